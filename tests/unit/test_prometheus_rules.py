"""deploy/prometheus's alerting rules: valid (promtool check rules), firing when and as they should
(promtool test rules), and about metrics that statusflow's processes really export."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
RULES = REPO / "deploy" / "prometheus" / "rules"
PROMTOOL = "promtool"


def _promtool(*args: str) -> subprocess.CompletedProcess[str]:
    if shutil.which(PROMTOOL) is None:
        pytest.fail("promtool is missing: `make alerting-tools` installs Debian's prometheus (make test does)")
    return subprocess.run([PROMTOOL, *args], cwd=RULES, capture_output=True, text=True, check=False, timeout=120)


def test_rules_are_valid() -> None:
    done = _promtool("check", "rules", "statusflow.rules.yml")
    assert done.returncode == 0, done.stdout + done.stderr


def test_rules_fire_as_their_unit_tests_say() -> None:
    done = _promtool("test", "rules", "statusflow.rules.test.yml")
    assert done.returncode == 0, done.stdout + done.stderr


def test_every_rule_has_a_test_case_that_fires_it() -> None:
    """A rule without a case that fires it is a rule nobody has seen fire: a wrong label, `for`
    or threshold would go unnoticed until the day it should have told someone."""
    tests = yaml.safe_load((RULES / "statusflow.rules.test.yml").read_text())
    rule_files = sorted(path.name for path in RULES.glob("*.rules.yml"))
    assert sorted(tests["rule_files"]) == rule_files, "every rules file is loaded by the rule tests"
    alerts = {
        rule["alert"]
        for name in rule_files
        for group in yaml.safe_load((RULES / name).read_text())["groups"]
        for rule in group["rules"]
        if "alert" in rule
    }
    fired = {
        case["alertname"]
        for test in tests["tests"]
        for case in test.get("alert_rule_test", [])
        if case.get("exp_alerts")
    }
    assert alerts - fired == set(), "rules without a promtool test case that fires them"


def test_rules_name_only_metrics_that_are_exported() -> None:
    rules = yaml.safe_load((RULES / "statusflow.rules.yml").read_text())
    exprs = " ".join(rule["expr"] for group in rules["groups"] for rule in group["rules"])
    names = set(re.findall(r"statusflow_[a-z_]+", exprs))
    assert names and names <= exported(), sorted(names - exported())


def exported() -> set[str]:
    """Every metric and sample name that the receiver, worker, dashboard and notifier register."""
    from faust.sensors.prometheus import FaustMetrics
    from prometheus_client import CollectorRegistry

    from dashboard.observability import DashboardMetrics
    from notifier.metrics import NotifierMetrics
    from receiver.observability import ReceiverMetrics
    from schemas.live_channels import ReloadMetrics
    from streams.app import WORKER_METRICS_PREFIX
    from streams.lag import lag_gauge

    worker = CollectorRegistry()
    FaustMetrics.create(worker, WORKER_METRICS_PREFIX)
    lag_gauge(worker).labels("g", "t").set(0)
    reloads = CollectorRegistry()  # the receiver's and the worker's own (schemas/live_channels.py)
    ReloadMetrics.register(reloads)
    registries = [
        worker,
        reloads,
        ReceiverMetrics.create().registry,
        DashboardMetrics.create().registry,
        NotifierMetrics.create().registry,
    ]
    names: set[str] = set()
    for registry in registries:
        for family in registry.collect():
            names.add(family.name)
            names.update(sample.name for sample in family.samples)
            if family.type == "counter":
                names.add(f"{family.name}_total")
    return names
