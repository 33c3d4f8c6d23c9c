"""One message under all its ids (aliases), its history, and the ids of dead letters."""

from __future__ import annotations

import argparse
import dataclasses
import json

from hypothesis import given
from hypothesis import strategies as st

from schemas.codec import codec
from statusflow_cli.main import matches
from streams.adapters.gupshup import GupshupAdapter
from streams.adapters.salvage import message_keys
from streams.clock import now_ms
from streams.core.batches import RawRecord, plan_normalize, plan_track
from streams.core.outputs import Source
from streams.core.records import bundle_parts_from_avro, state_from_bytes
from streams.domain.aliases import Alias, alias_told, may_be_alias, move, rekey
from streams.domain.events import StatusEvent
from streams.domain.history import DEAD_LETTERED, Entry, add, event_entry, from_bytes, to_bytes
from streams.domain.lattice import MessageState, merge
from streams.domain.status import Status
from tests.factories import FIXTURES, raw_webhook

GS = "ee4a68a0-1203-4c85-8dc3-49d0b3226a35"
WA = "gBEGkYaYVSEEAgnZxQ3JmKK6Wvg"


def gupshup_v2(kind: str, ts: int, *, gs_id: str | None = GS, request_id: str = "req-1") -> StatusEvent:
    payload: dict[str, object] = {"id": WA, "type": kind, "payload": {"ts": ts}}
    if gs_id is not None:
        payload["gsId"] = gs_id
    body = json.dumps({"type": "message-event", "payload": payload, "timestamp": ts * 1000}).encode()
    raw = dataclasses.replace(raw_webhook("gupshup", body), request_id=request_id, received_at=ts * 1000 + 50)
    (event,) = GupshupAdapter().parse(raw).events
    return event


# --- aliases ---------------------------------------------------------------------------------


def test_a_report_with_both_ids_tells_the_alias_and_a_late_one_may_be_one() -> None:
    sent = gupshup_v2("sent", 1_750_030_010)
    assert sent.message_key == f"gupshup:default:{GS}"
    assert alias_told(sent) == f"gupshup:default:{WA}"
    late = gupshup_v2("read", 1_750_640_000, gs_id=None)
    assert late.message_key == f"gupshup:default:{WA}"
    assert alias_told(late) is None
    assert may_be_alias(late.provider, late.message_id, late.correlation_id)
    assert not may_be_alias(sent.provider, sent.message_id, sent.correlation_id)
    assert not may_be_alias("meta", "wamid.1", None)  # one id per message: never looked up


def test_a_rekeyed_late_report_lands_on_the_canonical_message() -> None:
    late = gupshup_v2("read", 1_750_640_000, gs_id=None)
    moved = rekey(late, f"gupshup:default:{GS}")
    assert moved.message_key == f"gupshup:default:{GS}"
    assert moved.correlation_id == WA
    assert moved.status is Status.READ


def _fold(events: list[StatusEvent]) -> MessageState | None:
    state: MessageState | None = None
    for event in events:
        state = merge(state, event)
    return state


@given(st.permutations(range(4)), st.integers(0, 4))
def test_a_state_tracked_under_the_alias_joins_to_the_state_of_all_reports_under_one_key(
    order: list[int], split: int
) -> None:
    # Whatever was tracked under WhatsApp's id before the correlation was known, and whatever
    # under gsId, their join is the state of every report tracked under gsId.
    reports = [
        gupshup_v2("enqueued", 1_750_030_000),
        gupshup_v2("sent", 1_750_030_010),
        gupshup_v2("delivered", 1_750_030_020),
        gupshup_v2("read", 1_750_640_000, gs_id=None),
    ]
    reports = [reports[i] for i in order]
    canonical = f"gupshup:default:{GS}"
    # Late reports before the split arrived before the alias (tracked under WhatsApp's id),
    # those after it were re-keyed on arrival.
    under_alias = [e for e in reports[:split] if e.message_id == WA]
    rekeyed = [rekey(e, canonical) if e.message_id == WA else e for e in reports]
    expected = _fold(rekeyed)
    joined = _fold([r for e, r in zip(reports, rekeyed, strict=True) if e not in under_alias])
    alias_state = _fold(under_alias)
    if alias_state is not None:
        joined = move(joined, alias_state, canonical)
    assert joined is not None and expected is not None
    assert joined.reported() == expected.reported()
    assert joined.status is Status.READ


def test_an_alias_keeps_its_canonical_key_and_the_latest_time() -> None:
    alias = Alias("gupshup:default:gs", 10)
    assert alias.refreshed(5) == alias
    assert alias.refreshed(20) == Alias("gupshup:default:gs", 20)
    assert Alias.from_bytes(alias.to_bytes()) == alias


# --- history ---------------------------------------------------------------------------------


def entry(received_at: int, request_id: str, outcome: str = "changed") -> Entry:
    return Entry(received_at, request_id, "e", "sent", "sent", outcome)


def test_history_is_in_arrival_order_without_repeats_and_bounded() -> None:
    entries = [entry(t, f"r{t}") for t in (5, 1, 3, 2, 4)]
    history = add((), entries, limit=3)
    assert [e.request_id for e in history] == ["r3", "r4", "r5"]
    # A re-processed batch adds nothing and keeps the outcome first recorded.
    assert add(history, [entry(5, "r5", "duplicate")], limit=3) == history
    assert from_bytes(to_bytes(history)) == history
    assert from_bytes(None) == ()


@given(st.permutations(list(range(8))), st.integers(1, 8))
def test_history_does_not_depend_on_the_order_or_grouping_of_additions(order: list[int], cut: int) -> None:
    entries = [entry(t // 2, f"r{t}") for t in order]
    at_once = add((), entries, limit=5)
    in_two = add(add((), entries[:cut], limit=5), entries[cut:], limit=5)
    assert at_once == in_two == add((), sorted(entries, key=lambda e: e.order), limit=5)


def test_a_message_posted_six_times_has_six_history_entries() -> None:
    posts = [gupshup_v2("sent", 1_750_030_010, request_id=f"req-{i}") for i in range(6)]
    state: bytes | None = None
    history: tuple[Entry, ...] = ()
    for event in posts:
        plan = plan_track([event], lambda _k, s=state: s, 60_000, at=now_ms())  # type: ignore[misc]
        state = plan.writes.get(event.message_key.encode(), state)
        history = add(history, plan.history[event.message_key.encode()])
    assert [e.outcome for e in history] == ["changed"] + ["duplicate"] * 5
    assert [e.request_id for e in history] == [f"req-{i}" for i in range(6)]
    assert {e.provider_status for e in history} == {"sent"}
    assert state is not None and state_from_bytes(posts[0].message_key.encode(), state).status is Status.SENT


def test_a_duplicates_audit_record_names_its_message() -> None:
    event = gupshup_v2("sent", 1_750_030_010)
    first = plan_track([event], lambda _k: None, 60_000, at=now_ms())
    again = plan_track([event], lambda key: first.writes[key], 60_000, at=now_ms())
    (audit,) = [codec("audit_record").decode(v) for _, v in again.audits]
    assert audit["outcome"] == "duplicate"
    assert audit["message_keys"] == [f"gupshup:default:{GS}", f"gupshup:default:{WA}"]
    assert event_entry(event, "duplicate").provider_status == "sent"


# --- dead letters name their messages --------------------------------------------------------


def _normalize(provider: str, body: bytes, content_type: str = "application/json") -> tuple[dict, list]:  # type: ignore[type-arg]
    raw = dataclasses.replace(raw_webhook(provider, body, content_type), request_id="req-dl")
    plan = plan_normalize([RawRecord(b"req-dl", raw.to_avro(), Source("raw", 0, 7))], 4, at=now_ms())
    (audit,) = [codec("audit_record").decode(v) for _, v in plan.audits]
    notes = [n for _, _, v in plan.encoded_bundles() for n in bundle_parts_from_avro(v).notes]
    return audit, notes


def test_a_dead_lettered_webhooks_audit_and_history_name_its_message() -> None:
    body = json.dumps(
        {"type": "message-event", "payload": {"id": WA, "gsId": GS, "type": "in_orbit", "payload": {}}}
    ).encode()
    audit, notes = _normalize("gupshup", body)
    assert audit["outcome"] == "dead_lettered"
    assert audit["message_keys"] == [f"gupshup:default:{GS}"]
    assert [(n["message_key"], n["request_id"], n["outcome"]) for n in notes] == [
        (f"gupshup:default:{GS}", "req-dl", DEAD_LETTERED)
    ]


def test_a_normalized_webhooks_audit_names_its_messages() -> None:
    audit, notes = _normalize("meta", (FIXTURES / "meta" / "batch_two_entries.json").read_bytes())
    assert audit["outcome"] == "normalized"
    assert len(audit["message_keys"]) >= 1
    assert all(k.startswith("meta:default:") for k in audit["message_keys"])
    assert notes == []


def test_ids_are_read_from_bodies_the_adapters_refuse() -> None:
    meta = {
        "entry": [{"id": "WABA-1", "changes": [{"value": {"statuses": [{"id": "wamid.9", "status": "in_orbit"}]}}]}]
    }
    assert message_keys(raw_webhook("meta", json.dumps(meta).encode())) == ("meta:default:wamid.9",)
    form = b"MessageSid=SM1&MessageStatus=bogus"
    assert message_keys(raw_webhook("twilio", form, "application/x-www-form-urlencoded")) == ("twilio:default:SM1",)
    assert message_keys(raw_webhook("vonage", b'{"message_uuid": "u-1", "status": 7}')) == ("vonage:default:u-1",)
    assert message_keys(raw_webhook("aivo", b"not json at all \xff")) == ()
    many = json.dumps([{"message_id": f"m{i}", "status": "x"} for i in range(50)]).encode()
    assert len(message_keys(raw_webhook("aivo", many))) == 20


# --- statusflow tail audit --message ---------------------------------------------------------


def test_tail_finds_audit_records_by_any_named_message() -> None:
    record = {"schema": "audit_record", "message_keys": [f"gupshup:default:{GS}", f"gupshup:default:{WA}"]}
    for asked in (f"gupshup:default:{GS}", GS, f"gupshup:default:{WA}", WA):
        assert matches(record, argparse.Namespace(channel=None, message=asked, kind=None))
    assert not matches(record, argparse.Namespace(channel=None, message="other", kind=None))
