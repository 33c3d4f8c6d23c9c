"""Gupshup v2 message events and v3 Cloud API statuses → canonical events."""

from __future__ import annotations

import re
from typing import Any

import pytest

from streams.adapters.gupshup import GupshupAdapter
from streams.core.normalizer import normalize
from streams.domain.status import FailureReason, Status
from tests.adapter_harness import RECEIVED_AT, AdapterHarness
from tests.factories import event_fields, raw_webhook, refusal

ADAPTER = GupshupAdapter()
GS_ID = "ee4a68a0-1203-4c85-8dc3-49d0b3226a35"
WA_ID = "gBEGkYaYVSEEAgnZxQ3JmKK6Wvg"
V3_GS_ID = "2baff204-c39a-4121-90b5-f53f26d522b3"
V3_WA_ID = "wamid.HBgMOTE5ODc2NTQzMjEwFQIAERgSNkZCMThGMEEwQzJDOUFGQjFBAA=="
MASKED = "919*******10"
GUPSHUP = AdapterHarness(ADAPTER, defaults={"message_id": GS_ID, "recipient": MASKED, "correlation_id": WA_ID})
parse = GUPSHUP.parse


def expected(status: Status, word: str, occurred_at: int, **overrides: Any) -> dict[str, Any]:
    """Every canonical field of a Gupshup event; a message is keyed by Gupshup's id."""
    return GUPSHUP.expected(status, word, occurred_at=occurred_at, **overrides)


CASES: dict[str, dict[str, Any]] = {
    # enqueued: Gupshup's id in `id`, WhatsApp's in payload.whatsappMessageId, time = envelope ms.
    "v2_enqueued.json": expected(Status.QUEUED, "enqueued", 1_750_030_000_123),
    # sent/delivered/read/deleted: WhatsApp's id in `id`, Gupshup's in `gsId`, time = payload.ts s.
    "v2_sent.json": expected(Status.SENT, "sent", 1_750_030_010_000),
    "v2_delivered.json": expected(Status.DELIVERED, "delivered", 1_750_030_020_000),
    "v2_read_string_ts.json": expected(Status.READ, "read", 1_750_030_030_000),
    "v2_deleted.json": expected(Status.DELETED, "deleted", 1_750_030_040_000),
    "v2_failed_not_on_whatsapp.json": expected(
        Status.FAILED,
        "failed",
        1_750_030_001_500,
        message_id="5c2f1c8e-7a59-4c1e-9d0b-2f0f6b7d1a11",
        recipient="919*******01",
        failure_reason=FailureReason.NOT_FOUND,
        error_code="1002",
        error_title="Number Does Not Exists On WhatsApp",
        correlation_id=None,
    ),
    "v2_failed_not_opted_in.json": expected(
        Status.FAILED,
        "failed",
        1_750_030_002_500,
        message_id="7d1e9a3b-0c44-4f5e-8a6b-9e3c2d1f0a22",
        recipient="919*******02",
        failure_reason=FailureReason.REJECTED,
        error_code="1008",
        error_title="User is not Opted in and Inactive",
        correlation_id=None,
    ),
    # More than a week after sending Gupshup drops gsId: only WhatsApp's id is left.
    "v2_sent_late_without_gsid.json": expected(
        Status.SENT,
        "sent",
        1_750_030_050_000,
        message_id="gBEGkYaYVSEEAgmLateNoGsId01",
        correlation_id="gBEGkYaYVSEEAgmLateNoGsId01",
    ),
    "v2_enqueued_missing_time.json": expected(
        Status.QUEUED,
        "enqueued",
        RECEIVED_AT,
        message_id="0b8e6f4a-1111-4a2b-9c3d-4e5f6a7b8c9d",
        time_from_receipt=True,
        correlation_id=None,
    ),
    # v3: Meta's shape, millisecond timestamps, keyed by gs_id, wamid as correlation.
    "v3_enqueued.json": expected(
        Status.QUEUED, "enqueued", 1_750_030_000_456, message_id=V3_GS_ID, correlation_id=V3_WA_ID
    ),
    "v3_delivered.json": expected(
        Status.DELIVERED,
        "delivered",
        1_750_030_020_456,
        message_id=V3_GS_ID,
        correlation_id=V3_WA_ID,
        conversation_id="c0ffee",
        pricing_category="marketing",
    ),
    "v3_failed.json": expected(
        Status.FAILED,
        "failed",
        1_750_030_003_456,
        message_id=V3_GS_ID,
        correlation_id=V3_WA_ID,
        failure_reason=FailureReason.NOT_FOUND,
        error_code="131026",
        error_title="Message undeliverable",
    ),
}


@pytest.mark.parametrize(("name", "fields"), CASES.items(), ids=list(CASES))
def test_every_canonical_field(name: str, fields: dict[str, Any]) -> None:
    result = parse(name)
    (event,) = result.events
    assert event_fields(event) == fields
    assert result.ignored == 0


def test_enqueued_sent_delivered_read_are_one_message() -> None:
    names = ["v2_enqueued.json", "v2_sent.json", "v2_delivered.json", "v2_read_string_ts.json"]
    events = [parse(name).events[0] for name in names]
    assert {e.message_key for e in events} == {f"gupshup:default:{GS_ID}"}
    assert {e.correlation_id for e in events} == {WA_ID}
    assert [e.status for e in events] == [Status.QUEUED, Status.SENT, Status.DELIVERED, Status.READ]
    assert len({e.event_id for e in events}) == 4


def test_v3_batch_keys_each_status_and_ignores_inbound() -> None:
    result = parse("v3_batch_with_inbound.json")
    assert [(e.message_id, e.correlation_id, e.status, e.occurred_at) for e in result.events] == [
        ("aaaa1111-2222-3333-4444-555566667777", "wamid.A", Status.SENT, 1_750_030_010_000),
        ("wamid.B", "wamid.B", Status.READ, 1_750_030_030_000),
    ]
    assert result.ignored == 1
    assert result.ignored_reasons == ("inbound message",)


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("v2_inbound_message.json", "message (not a message status)"),
        ("v2_user_event.json", "user-event (not a message status)"),
    ],
)
def test_other_event_types_are_ignored_with_a_reason(name: str, reason: str) -> None:
    result = parse(name)
    assert result.events == ()
    assert result.ignored == 1
    assert result.ignored_reasons == (reason,)


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("v2_unknown_event_type.json", r"'mismatch' is not a known Gupshup message event"),
        ("v2_missing_id.json", r"payload\.id is missing"),
        ("v2_bad_ts.json", r"payload\.payload\.ts is not a recognised time"),
        ("v2_payload_not_object.json", r"payload must be an object"),
        ("no_type.json", r"neither entry\[\] \(v3\) nor a type \(v2\)"),
        ("v3_unknown_status.json", r"'teleported' is not a known Gupshup v3 status"),
    ],
)
def test_unparseable_events_say_why(name: str, reason: str) -> None:
    assert re.search(reason, refusal(ADAPTER, GUPSHUP.raw(name)))


@pytest.mark.parametrize("body", [b"not json", b"[]", b"{}", b'{"type": 3}', b'{"entry": "x"}'])
def test_garbage_is_unparseable(body: bytes) -> None:
    assert refusal(ADAPTER, raw_webhook("gupshup", body))


def test_full_number_never_leaves_normalize() -> None:
    raw = GUPSHUP.raw("v2_sent.json")
    assert "9876543" in (parse("v2_sent.json").events[0].recipient or "")  # as sent, for the privacy step
    (event,) = normalize(raw.to_avro()).events
    assert event.recipient == MASKED
    assert "9876543" not in (event.recipient or "")
