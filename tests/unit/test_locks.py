"""The image, make install and so CI install from the lock files; the locks pin what pyproject.toml
declares, with hashes, and the image's lock holds the versions CI tests."""

from __future__ import annotations

import re
import shlex
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
LOCK = "requirements.lock"
DEV_LOCK = "requirements-dev.lock"
PROJECT = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]


def _name(requirement: str) -> str:
    """A requirement's normalised distribution name (PEP 503)."""
    match = re.match(r"[A-Za-z0-9][A-Za-z0-9._-]*", requirement.strip())
    assert match, requirement
    return re.sub(r"[-_.]+", "-", match.group(0)).lower()


def _locked(lock: str) -> dict[str, str]:
    """name -> version of every package a lock file pins."""
    pins = re.findall(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;\\]+)", (REPO / lock).read_text(encoding="utf-8"), re.M)
    return {_name(name): version for name, version in pins}


def _run_lines(path: str) -> list[list[str]]:
    """Every `pip install` command of a Dockerfile's RUN lines or a Makefile recipe, as words."""
    commands = []
    for line in (REPO / path).read_text(encoding="utf-8").splitlines():
        if "pip install" not in line or line.lstrip().startswith("#"):
            continue
        for command in re.split(r"&&|;", line):
            words = shlex.split(command.replace("$(PY) -m pip", "pip").replace("RUN ", "", 1))
            while words and re.fullmatch(r"[A-Z_]+=.*", words[0]):
                words = words[1:]  # an environment setting for the command
            if words[:2] == ["pip", "install"]:
                commands.append(words)
    return commands


def test_the_image_installs_its_dependencies_from_the_lock_and_the_project_without_resolving() -> None:
    dockerfile = (REPO / "Dockerfile").read_text(encoding="utf-8")
    assert re.search(rf"^COPY\s+(.*\s)?{re.escape(LOCK)}\s", dockerfile, re.M), "the lock is not copied in"
    installs = _run_lines("Dockerfile")
    from_lock = [c for c in installs if "-r" in c]
    assert from_lock, "no pip install -r in the Dockerfile"
    for command in from_lock:
        assert command[command.index("-r") + 1] == LOCK
        assert "--require-hashes" in command
    # Anything else installed is the project itself, on top of the lock, with no resolution of its own.
    for command in installs:
        if "-r" not in command:
            assert "--no-deps" in command, command
    # The lock goes in before the project's own install.
    assert dockerfile.index(f"-r {LOCK}") < dockerfile.index("--no-deps")


def test_make_install_and_so_ci_install_from_the_dev_lock() -> None:
    installs = _run_lines("Makefile")
    assert any("-r" in c and "--require-hashes" in c and "$(DEV_LOCK)" in c for c in installs), installs
    assert all("--no-deps" in c for c in installs if "-e" in c), installs
    assert f"DEV_LOCK := {DEV_LOCK}" in (REPO / "Makefile").read_text(encoding="utf-8")
    assert "make test" in (REPO / ".ci" / "run").read_text(encoding="utf-8")


def test_every_lock_pins_each_declared_dependency_with_hashes() -> None:
    extras = PROJECT["optional-dependencies"]
    core = {_name(r) for r in PROJECT["dependencies"]}
    everything = core | {_name(r) for extra in ("dev", "analytics", "terminal") for r in extras[extra]} - {"statusflow"}
    for lock, wanted in ((LOCK, core), (DEV_LOCK, everything)):
        locked = _locked(lock)
        assert not wanted - locked.keys(), f"{lock} lacks {sorted(wanted - locked.keys())}: run make lock"
        text = (REPO / lock).read_text(encoding="utf-8")
        assert text.count("==") <= text.count("--hash=sha256:"), f"{lock} has a pin without a hash"


def test_the_image_lock_has_the_versions_ci_tests_and_none_of_the_extras() -> None:
    image, ci = _locked(LOCK), _locked(DEV_LOCK)
    assert {name: version for name, version in image.items() if ci.get(name) != version} == {}
    for extra in ("pyarrow", "rich", "duckdb", "pytest"):
        assert extra not in image


def test_the_build_metadata_is_in_the_form_setuptools_takes_without_a_deprecation() -> None:
    # setuptools 77+ boxes a deprecation around a `license` table and License classifiers (PEP 639).
    build = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["build-system"]
    assert isinstance(PROJECT["license"], str)
    assert not [c for c in PROJECT.get("classifiers", []) if c.startswith("License ::")]
    assert any(r.replace(" ", "").startswith("setuptools>=") for r in build["requires"])
    floor = next(r for r in build["requires"] if r.startswith("setuptools"))
    assert int(floor.split(">=")[1].split(".")[0]) >= 77
