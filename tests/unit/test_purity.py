"""The domain core imports no I/O framework (docs/architecture.md): adapters, lattice, tracker, normalizer."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PURE = [
    *sorted((REPO / "streams" / "domain").glob("*.py")),
    *sorted((REPO / "streams" / "adapters").rglob("*.py")),
    REPO / "streams" / "normalizer.py",
    REPO / "streams" / "tracker.py",
    REPO / "streams" / "records.py",
    REPO / "streams" / "outputs.py",
    REPO / "receiver" / "auth.py",
]
BANNED = ("faust", "aiokafka", "aiohttp", "mode")


@pytest.mark.parametrize("path", PURE, ids=lambda p: str(p.relative_to(REPO)))
def test_module_imports_no_io_framework(path: Path) -> None:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    imported: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            imported.add(node.module.split(".")[0])
    assert not imported & set(BANNED), f"{path.name} imports {sorted(imported & set(BANNED))}"
