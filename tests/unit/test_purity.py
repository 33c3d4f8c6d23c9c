"""The pure core imports no I/O framework and never reads the clock (docs/architecture.md).

Driven by the packages, not a list: every module of streams/core, streams/domain and
streams/adapters (and receiver/auth.py, the receiver's pure half), with what they import from
this repository followed, so that a core module cannot reach Faust through a wiring module.
"""

from __future__ import annotations

import ast
from functools import cache
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PACKAGES = ("streams/core", "streams/domain", "streams/adapters")
PURE = [
    *(path for package in PACKAGES for path in sorted((REPO / package).rglob("*.py"))),
    REPO / "receiver" / "auth.py",
]
FIRST_PARTY = ("streams", "schemas", "receiver")
BANNED = frozenset({"faust", "aiokafka", "aiohttp", "mode", "prometheus_client", "rocksdict", "time"})
#: Calls that read the clock through datetime (`time` itself is banned above).
CLOCK_READS = frozenset({"now", "utcnow", "today", "fromtimestamp", "utcfromtimestamp"})
#: Where the pure core may import from this repository.
CORE = tuple(package.replace("/", ".") for package in PACKAGES)


def _relative(path: Path) -> str:
    return str(path.relative_to(REPO))


def _source(module: str) -> Path | None:
    base = REPO.joinpath(*module.split("."))
    for path in (base.with_suffix(".py"), base / "__init__.py"):
        if path.is_file():
            return path
    return None


def _module_of(path: Path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> set[str]:
    """Full names of the modules `path` imports (`from a import b` counts a and a.b)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


@cache
def _reached(path: Path) -> frozenset[str]:
    """Every module imported by `path`, following this repository's own modules."""
    seen: set[str] = set()
    todo = [path]
    visited: set[Path] = set()
    while todo:
        current = todo.pop()
        if current in visited:
            continue
        visited.add(current)
        for name in _imports(current):
            seen.add(name)
            if name.split(".")[0] in FIRST_PARTY and (source := _source(name)) is not None:
                todo.append(source)
    return frozenset(seen)


def test_the_packages_are_walked() -> None:
    names = {_module_of(path) for path in PURE}
    assert {"streams.core.batches", "streams.core.tracker", "streams.domain.lattice", "streams.adapters.meta"} <= names


@pytest.mark.parametrize("path", PURE, ids=_relative)
def test_module_imports_no_io_framework(path: Path) -> None:
    banned = sorted({name for name in _reached(path) if name.split(".")[0] in BANNED})
    assert not banned, f"{path.name} reaches {banned}"


@pytest.mark.parametrize("path", [p for p in PURE if p.is_relative_to(REPO / "streams")], ids=_relative)
def test_core_imports_only_the_core_from_streams(path: Path) -> None:
    inside = tuple(f"{package}." for package in CORE)
    outside = sorted(
        name
        for name in _imports(path)
        if name.startswith("streams.") and name not in CORE and not name.startswith(inside)
    )
    assert not outside, f"{path.name} imports {outside} (wiring or Faust repairs)"


@pytest.mark.parametrize("path", PURE, ids=_relative)
def test_module_reads_no_clock(path: Path) -> None:
    reads = [
        f"line {node.lineno}: {ast.unparse(node)}"
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr in CLOCK_READS
        and ast.unparse(node.func.value).split(".")[-1] in {"datetime", "date"}
    ]
    assert not reads, f"{path.name} reads the clock: {reads}"
