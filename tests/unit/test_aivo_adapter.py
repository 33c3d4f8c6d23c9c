"""Aivo Engage status webhooks → canonical events."""

from __future__ import annotations

import re
from typing import Any

import pytest

from streams.adapters.aivo import AivoAdapter
from streams.domain.status import FailureReason, Status
from tests.adapter_harness import RECEIVED_AT, AdapterHarness
from tests.factories import event_fields, raw_webhook, refusal

ADAPTER = AivoAdapter()
WAMID = "wamid.HBgMNTQxMTEyMzQxMjM0FQIAERgSQzg1QTk2RTMyMkQwMDhBQkE1AA=="
CAMPAIGN_ID = "074116ff-76f3-47b7-8be2-92f465718a3e"
AIVO = AdapterHarness(ADAPTER, defaults={"message_id": WAMID, "recipient": "541*******34", "campaign": CAMPAIGN_ID})
parse = AIVO.parse


def expected(status: Status, word: str, occurred_at: int, **overrides: Any) -> dict[str, Any]:
    """Every canonical field of an Aivo event."""
    return AIVO.expected(status, word, occurred_at=occurred_at, **overrides)


CASES: dict[str, dict[str, Any]] = {
    "status_sent.json": expected(Status.SENT, "sent", 1_750_030_010_000),
    "status_delivered.json": expected(Status.DELIVERED, "delivered", 1_750_030_020_000),
    "status_read.json": expected(Status.READ, "read", 1_750_030_030_000),
    "status_error.json": expected(
        Status.FAILED,
        "error",
        1_750_030_040_000,
        failure_reason=FailureReason.NOT_FOUND,
        error_code="131026",
        error_title="Message undeliverable",
    ),
    "status_error_flat_fields.json": expected(
        Status.FAILED,
        "error",
        1_750_030_041_000,
        # Meta's per-user marketing limit: its own reason, not an expiry (issue 16).
        failure_reason=FailureReason.RATE_LIMITED,
        error_code="131049",
        error_title="This message was not delivered to maintain healthy ecosystem engagement.",
    ),
    "status_error_no_details.json": expected(
        Status.FAILED, "error", 1_750_030_042_000, failure_reason=FailureReason.ERROR
    ),
    "status_uppercase_numeric_ts.json": expected(Status.DELIVERED, "DELIVERED", 1_750_030_020_000),
    "campaign_name_only.json": expected(Status.SENT, "sent", 1_750_030_010_000, campaign="Hot Sale"),
    # A bare string is the campaign's name (it used to dead-letter the status).
    "campaign_not_object.json": expected(Status.SENT, "sent", 1_750_030_010_000, campaign="Hot Sale"),
    "no_campaign_no_recipient.json": expected(Status.READ, "read", 1_750_030_030_000, campaign=None, recipient=None),
    "missing_timestamp.json": expected(Status.SENT, "sent", RECEIVED_AT, time_from_receipt=True),
    "missing_event_name.json": expected(Status.DELIVERED, "delivered", 1_750_030_020_000),
}


@pytest.mark.parametrize(("name", "fields"), CASES.items(), ids=list(CASES))
def test_every_canonical_field(name: str, fields: dict[str, Any]) -> None:
    result = parse(name)
    (event,) = result.events
    assert event_fields(event) == fields
    assert result.ignored == 0


def test_a_list_of_events_in_one_post() -> None:
    result = parse("batch_list.json")
    assert [(e.message_id, e.status, e.occurred_at) for e in result.events] == [
        (WAMID, Status.SENT, 1_750_030_010_000),
        ("wamid.SECOND", Status.DELIVERED, 1_750_030_020_000),
    ]
    assert result.ignored == 1
    assert result.ignored_reasons == ("event 'msg_received' (not a message status)",)


def test_other_event_names_are_ignored_not_errors() -> None:
    result = parse("other_event.json")
    assert result.events == ()
    assert result.ignored_reasons == ("event 'conversation_closed' (not a message status)",)


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("unknown_status.json", r"body\.message_status 'bounced' is not a known Aivo status"),
        ("missing_message_id.json", r"body\.message_id is missing"),
        ("bad_timestamp.json", r"body\.event_timestamp is not a recognised time"),
        ("empty_list.json", r"non-empty list"),
        ("list_of_strings.json", r"body\[0\] must be an object"),
    ],
)
def test_unparseable_events_say_why(name: str, reason: str) -> None:
    assert re.search(reason, refusal(ADAPTER, AIVO.raw(name)))


@pytest.mark.parametrize("body", [b"not json", b"3", b'"sent"', b"{}", b'{"message_status": "sent"}'])
def test_garbage_is_unparseable(body: bytes) -> None:
    assert refusal(ADAPTER, raw_webhook("aivo", body))


def test_event_id_is_deterministic() -> None:
    assert parse("status_sent.json").events[0].event_id == parse("status_sent.json").events[0].event_id
    assert parse("status_sent.json").events[0].event_id != parse("status_read.json").events[0].event_id
