"""The adapters' tests share one harness (tests/adapter_harness.py) instead of a copy each."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from streams.adapters.meta import MetaAdapter
from streams.domain.status import Status
from tests.adapter_harness import RECEIVED_AT, AdapterHarness, expected_event, load_fixture
from tests.factories import event_fields, status_event

UNIT = Path(__file__).resolve().parent
ADAPTER_TESTS = sorted({*UNIT.glob("test_*adapter*.py"), *UNIT.glob("adapters*/**/*.py")} - {Path(__file__)})
# Field names of a canonical event: a dict literal with this many of them is an expected-event builder.
CANONICAL = set(event_fields(status_event(Status.SENT, 1)))
BUILDER_FIELDS = 6
READS = {"read_bytes", "read_text", "open"}


def _copies(path: Path) -> list[str]:
    """What in a test module repeats the harness: fixture loading or an expected-event builder."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Name) and node.id == "FIXTURES":
            found.append(f"line {node.lineno}: reads tests/fixtures itself (use load_fixture or AdapterHarness)")
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in READS:
            found.append(f"line {node.lineno}: reads a file itself (use load_fixture or AdapterHarness)")
        elif isinstance(node, ast.Dict):
            keys = {k.value for k in node.keys if isinstance(k, ast.Constant) and isinstance(k.value, str)}
            if len(keys & CANONICAL) >= BUILDER_FIELDS:
                found.append(f"line {node.lineno}: builds an expected event itself (use expected_event)")
    return found


def test_there_are_adapter_tests_to_guard() -> None:
    assert len(ADAPTER_TESTS) >= 9


@pytest.mark.parametrize("path", ADAPTER_TESTS, ids=lambda p: p.name)
def test_no_adapter_test_repeats_the_harness(path: Path) -> None:
    assert _copies(path) == []


def test_the_guard_sees_a_copied_loader_and_builder(tmp_path: Path) -> None:
    copied = """
def parse(name):
    return ADAPTER.parse(raw_webhook("x", (FIXTURES / "x" / name).read_bytes()))

def expected(status):
    return {"provider": "x", "channel": "default", "message_id": "m", "status": status,
            "provider_status": "sent", "occurred_at": 1, "received_at": 1}
"""
    module = tmp_path / "test_copied_adapter.py"
    module.write_text(copied, encoding="utf-8")
    assert len(_copies(module)) == 3


def test_the_builder_spells_out_every_canonical_field() -> None:
    built = expected_event("meta", Status.SENT, "sent", message_id="wamid.1")
    assert set(built) == CANONICAL
    assert built["message_key"] == "meta:default:wamid.1"
    assert built["received_at"] == RECEIVED_AT


def test_a_harness_compares_a_fixture_with_every_field() -> None:
    meta = AdapterHarness(MetaAdapter(), defaults={"message_id": "wamid.A", "recipient": None})
    assert meta.raw("batch_two_entries.json") == load_fixture("meta", "batch_two_entries.json")
    (first, *_) = meta.fields("batch_two_entries.json")
    assert first == meta.expected(Status.SENT, first["provider_status"], **_own(first))


def _own(fields: dict[str, object]) -> dict[str, object]:
    """The fields a test of this fixture would name: all but the harness's defaults."""
    return {k: v for k, v in fields.items() if k not in {"provider", "status", "provider_status", "message_key"}}
