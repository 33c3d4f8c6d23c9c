"""The extras (analytics, terminal) stay out of the processes' way, and a missing one is named."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
import tomllib
from importlib import metadata
from pathlib import Path

import pytest

from schemas.errors import MissingExtra

REPO = Path(__file__).resolve().parents[2]
PROJECT = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]


def _name(requirement: str) -> str:
    """A requirement's normalised distribution name (PEP 503)."""
    match = re.match(r"[A-Za-z0-9][A-Za-z0-9._-]*", requirement.strip())
    assert match, requirement
    return re.sub(r"[-_.]+", "-", match.group(0)).lower()


def test_the_extras_are_not_core_dependencies() -> None:
    core = {_name(r) for r in PROJECT["dependencies"]}
    assert not core & {"pyarrow", "rich", "duckdb"}
    assert {_name(r) for r in PROJECT["optional-dependencies"]["analytics"]} >= {"pyarrow"}
    assert {_name(r) for r in PROJECT["optional-dependencies"]["terminal"]} == {"rich"}


# Every process's entry point and the CLI, imported with the extras' packages absent.
_WITHOUT_EXTRAS = """
import sys

class Absent:
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in {"pyarrow", "rich", "duckdb"}:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None

sys.meta_path.insert(0, Absent())
import dashboard.__main__, notifier.__main__, receiver.__main__, statusflow_cli.main, statusflow_consumer
import streams.__main__
from statusflow_cli.main import main
sys.exit(main(["export-parquet", "--out", "unused"]))
"""


def test_the_processes_and_the_cli_run_without_the_extras_and_the_export_says_what_to_install() -> None:
    ran = subprocess.run(
        [sys.executable, "-c", _WITHOUT_EXTRAS], cwd=REPO, capture_output=True, text=True, timeout=120, check=False
    )
    assert "Traceback" not in ran.stderr, ran.stderr
    assert ran.returncode == 2, ran.stderr  # EXIT_USAGE: the installation, not the broker
    assert "pip install 'statusflow[analytics]'" in ran.stderr


def test_the_parquet_export_without_pyarrow_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("pyarrow", "pyarrow.parquet"):
        monkeypatch.setitem(sys.modules, name, None)  # `import pyarrow` now fails as when absent
    for name in ("statusflow_consumer.parquet", "statusflow_consumer.export"):
        monkeypatch.delitem(sys.modules, name, raising=False)
    with pytest.raises(MissingExtra, match=re.escape("pip install 'statusflow[analytics]'")) as raised:
        import statusflow_consumer.export  # noqa: F401
    assert isinstance(raised.value, ImportError)
    assert raised.value.extra == "analytics"


def test_a_terminal_without_rich_gets_plain_lines_and_one_word_on_how_to_get_bars(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from statusflow_cli.console import progress

    monkeypatch.setitem(sys.modules, "rich.console", None)
    with progress("demo", 3, enabled=True) as bar:
        bar.advance()
        bar.update(3, 3)
    assert "pip install 'statusflow[terminal]'" in capsys.readouterr().err


def test_the_clis_batch_limit_is_the_exports() -> None:
    from statusflow_cli import export as command
    from statusflow_consumer import export

    assert command.MAX_BATCH_RECORDS == export.MAX_BATCH_RECORDS


OUR_PACKAGES = (
    "receiver",
    "streams",
    "schemas",
    "devkit",
    "dashboard",
    "notifier",
    "statusflow_cli",
    "statusflow_consumer",
)


def _imported_top_levels(package: str) -> set[str]:
    names: set[str] = set()
    for path in (REPO / package).rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names.update(alias.name.partition(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names.add(node.module.partition(".")[0])
    return names - set(sys.stdlib_module_names) - set(OUR_PACKAGES)


def test_every_package_our_code_imports_is_declared_not_only_brought_by_another() -> None:
    extras = PROJECT["optional-dependencies"]
    declared = {_name(r) for r in [*PROJECT["dependencies"], *extras["analytics"], *extras["terminal"]]}
    owners = metadata.packages_distributions()
    undeclared = {
        f"{package} imports {module} ({', '.join(owners.get(module, [module]))})"
        for package in OUR_PACKAGES
        for module in _imported_top_levels(package)
        if not any(_name(dist) in declared for dist in owners.get(module, [module]))
    }
    assert sorted(undeclared) == []
