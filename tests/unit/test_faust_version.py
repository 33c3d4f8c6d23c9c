"""The worker runs only on the faust-streaming release its Faust repairs are written against."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from importlib import metadata
from pathlib import Path

import pytest

from streams.faust_ext import faust_version

REPO = Path(__file__).resolve().parents[2]


def _installed(monkeypatch: pytest.MonkeyPatch, found: str | None) -> list[str]:
    """Make the version lookup answer `found` (None: not installed); returns the names asked for."""
    asked: list[str] = []

    def version(name: str) -> str:
        asked.append(name)
        if found is None:
            raise metadata.PackageNotFoundError(name)
        return found

    monkeypatch.setattr(metadata, "version", version)
    return asked


def test_the_pinned_release_passes_and_it_is_faust_streaming_that_is_looked_up(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    asked = _installed(monkeypatch, faust_version.REQUIRED)
    faust_version.require_pinned()
    assert asked == ["faust-streaming"]


@pytest.mark.parametrize("found", ["0.15.2", "0.15.4", "0.11.0", "0.15.3.post1", "1.0.0"])
def test_any_other_release_stops_the_worker_naming_both_releases(monkeypatch: pytest.MonkeyPatch, found: str) -> None:
    _installed(monkeypatch, found)
    with pytest.raises(faust_version.FaustVersionError) as raised:
        faust_version.require_pinned()
    message = str(raised.value)
    assert f"faust-streaming {found} is installed" in message
    assert f"needs faust-streaming {faust_version.REQUIRED}" in message
    assert "docs/architecture.md" in message


def test_a_missing_faust_streaming_is_said_as_such(monkeypatch: pytest.MonkeyPatch) -> None:
    _installed(monkeypatch, None)
    with pytest.raises(faust_version.FaustVersionError, match="faust-streaming is not installed"):
        faust_version.require_pinned()


def test_pyproject_pins_exactly_the_release_the_check_requires() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    faust = [d for d in project["dependencies"] if d.replace(" ", "").startswith("faust-streaming")]
    assert faust == [f"faust-streaming=={faust_version.REQUIRED}"]


# The worker's own entry point (`python -m streams`), with the version lookup answering 0.14.0.
_WORKER_ON_ANOTHER_RELEASE = """
import importlib.metadata as metadata
import runpy

real = metadata.version
metadata.version = lambda name: "0.14.0" if name == "faust-streaming" else real(name)
runpy.run_module("streams", run_name="__main__", alter_sys=True)
"""


def test_the_worker_started_on_another_release_exits_with_the_message() -> None:
    started = subprocess.run(
        [sys.executable, "-c", _WORKER_ON_ANOTHER_RELEASE],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert started.returncode == 1, started.stderr
    assert "faust-streaming 0.14.0 is installed" in started.stderr
    assert f"needs faust-streaming {faust_version.REQUIRED}" in started.stderr
    assert "Traceback" not in started.stderr
