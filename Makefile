# statusflow: `make run` runs the pipeline locally, `make test` runs every test.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
INSTALLED := $(VENV)/.installed

# The lock files (docs/dependencies.md): every package at one version, with its hashes. The image
# installs LOCK (what the processes import); make install and CI install DEV_LOCK (LOCK's versions,
# plus the dev, analytics and terminal extras).
LOCK := requirements.lock
DEV_LOCK := requirements-dev.lock

.PHONY: install lock run test check unit integration browser alerting-tools screenshot dashboard broker-start broker-stop bench soak fuzz clean

install: $(INSTALLED)

# Reinstall whenever pyproject.toml or the lock changes; the venv is project-local. The project goes
# on top of the locked packages without resolving anything again (--no-deps). PYTHONWARNINGS hides
# setuptools' boxed notice that an editable install of several top-level packages goes through an
# import hook (information, not a deprecation: the build itself warns of nothing).
$(INSTALLED): pyproject.toml $(DEV_LOCK)
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q --require-hashes -r $(DEV_LOCK)
	PYTHONWARNINGS='ignore:Editable installation' $(PY) -m pip install -q --no-deps -e .
	touch $@

# Refresh both lock files from pyproject.toml, after a dependency changed there. Versions already
# locked stay unless pyproject.toml excludes them; LOCK_ARGS=--upgrade takes the newest allowed
# (LOCK_ARGS='--upgrade-package NAME' one package). uv runs from a venv of its own under .local.
UV_VERSION := 0.13.9
LOCK_TOOLS := .local/lock-tools
LOCK_ARGS ?=
lock:
	test -x $(LOCK_TOOLS)/bin/uv || { $(PYTHON) -m venv $(LOCK_TOOLS) && $(LOCK_TOOLS)/bin/pip install -q 'uv==$(UV_VERSION)'; }
	$(LOCK_TOOLS)/bin/uv pip compile pyproject.toml --quiet --python-version 3.11 --python-platform linux --generate-hashes \
		--extra dev --extra analytics --extra terminal --custom-compile-command 'make lock' \
		$(LOCK_ARGS) -o $(DEV_LOCK)
	$(LOCK_TOOLS)/bin/uv pip compile pyproject.toml --quiet --python-version 3.11 --python-platform linux --generate-hashes \
		--constraint $(DEV_LOCK) --custom-compile-command 'make lock' -o $(LOCK)

run: install
	$(PY) -m devkit.run_local

check: install
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m mypy

test: check browser alerting-tools
	$(PY) -m devkit.kafka_local fetch
	$(PY) -m pytest

# The dashboard's browser test drives Debian's chromium; installed here when missing (CI runs as root).
browser:
	@command -v chromium >/dev/null || { apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium; }

# The notifier's tests start Debian's Alertmanager; promtool (Debian's prometheus) checks and tests
# deploy/prometheus/rules. Installed here when missing, like the browser.
alerting-tools:
	@{ command -v prometheus-alertmanager && command -v promtool; } >/dev/null || { apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q prometheus-alertmanager prometheus; }

# docs/dashboard.png (and docs/dashboard-phone.png): the browser test's screenshots of a real demo run.
screenshot: install browser
	$(PY) -m devkit.kafka_local fetch
	STATUSFLOW_SCREENSHOT_DIR=docs $(PY) -m pytest tests/integration/test_dashboard_browser.py

# Only the dashboard, against a stack that is already running (make run starts it too).
dashboard: install
	$(PY) -m dashboard

unit: install
	$(PY) -m pytest tests/unit

integration: install
	$(PY) -m pytest -m integration

broker-start: install
	scripts/kafka-local start

broker-stop:
	scripts/kafka-local stop

clean:
	rm -rf .local .mypy_cache .ruff_cache .pytest_cache

# Every benchmark on a private broker, ~25 minutes on 2 cores (at most ~29: --budget-s 570 for
# the first four parts plus ~19 held for the full-stack part, whose 2-minute steps take ~16):
# prints the table and writes bench/results/latest.json (STATUSFLOW_BENCH_EVENTS,
# STATUSFLOW_BENCH_STEP_S, --profile: see README).
bench: install
	$(PY) -m bench $(BENCH_ARGS)

# The dev stack (broker, receiver, worker with the RocksDB store) under steady load for SOAK_MINUTES
# (at most 30) at SOAK_RATE webhooks/s (default: half the sustainable rate of the last make bench,
# else 1000): memory, lags, latency every 30 s, then the end state against the reference fold.
# Writes bench/results/soak-latest.{md,csv,png}.
SOAK_MINUTES ?= 25
soak: install
	SOAK_MINUTES=$(SOAK_MINUTES) SOAK_RATE=$(SOAK_RATE) $(PY) -m bench.soak

# Hostile-input campaign (issue 8): FUZZ_INPUTS inputs over 2 processes through every adapter,
# the normalize plan and the codec; crashers land in .local/fuzz-crashers (see docs/security.md).
FUZZ_INPUTS ?= 1000000
fuzz: install
	$(PY) -m devkit.fuzz --inputs $(FUZZ_INPUTS) --workers 2 --report .local/fuzz-latest.json
