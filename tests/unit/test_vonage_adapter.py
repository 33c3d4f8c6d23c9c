"""Vonage Messages API status webhooks → canonical events."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streams.adapters.base import UnparseableWebhook
from streams.adapters.vonage import VonageAdapter
from streams.domain.status import FailureReason, Status
from tests.adapter_harness import RECEIVED_AT, AdapterHarness
from tests.factories import event_fields, raw_webhook

ADAPTER = VonageAdapter()
UUID = "3c9e1f7a-2b4d-4e6f-9a1c-5d7e9f0b2c4e"
# 2025-06-15T23:27:41.118Z
AT = 1_750_030_061_118
MASKED_TO = "551********21"
VONAGE = AdapterHarness(
    ADAPTER, defaults={"message_id": UUID, "occurred_at": AT, "recipient": MASKED_TO, "campaign": "campaign-june"}
)
parse = VONAGE.parse


def expected(status: Status, word: str, **overrides: Any) -> dict[str, Any]:
    """Every canonical field of a Vonage event."""
    return VONAGE.expected(status, word, **overrides)


CASES: dict[str, dict[str, Any]] = {
    "status_submitted.json": expected(Status.QUEUED, "submitted"),
    "status_delivered.json": expected(
        Status.DELIVERED, "delivered", conversation_id="1234567890abcdef1234567890abcdef"
    ),
    "status_read.json": expected(Status.READ, "read"),
    "status_rejected.json": expected(
        Status.FAILED,
        "rejected",
        # 1340 "Outside of the allowed window" says more than `rejected`: the 24-hour window.
        failure_reason=FailureReason.EXPIRED,
        error_code="1340",
        error_title="Outside Allowed Window",
    ),
    "status_rejected_title_is_code.json": expected(
        Status.FAILED,
        "rejected",
        failure_reason=FailureReason.RATE_LIMITED,
        error_code="1000",
        error_title="Throttled - You have exceeded the submission capacity allowed on this account.",
    ),
    "status_undeliverable_not_on_whatsapp.json": expected(
        Status.FAILED,
        "undeliverable",
        failure_reason=FailureReason.NOT_FOUND,
        error_code="131026",
        error_title="Message undeliverable",
    ),
    "status_undeliverable_no_error.json": expected(Status.FAILED, "undeliverable", failure_reason=FailureReason.ERROR),
    # 2025-06-16T01:27:50+02:00
    "status_sms_channel.json": expected(
        Status.DELIVERED, "delivered", occurred_at=1_750_030_070_000, recipient="447*******23", campaign=None
    ),
    "missing_timestamp.json": expected(Status.READ, "read", occurred_at=RECEIVED_AT, time_from_receipt=True),
    "epoch_string_timestamp.json": expected(Status.DELIVERED, "delivered", occurred_at=1_750_030_061_000),
}


@pytest.mark.parametrize(("name", "fields"), CASES.items(), ids=list(CASES))
def test_every_canonical_field(name: str, fields: dict[str, Any]) -> None:
    result = parse(name)
    (event,) = result.events
    assert event_fields(event) == fields
    assert result.ignored == 0


def test_inbound_message_on_the_status_url_is_ignored_not_an_error() -> None:
    result = parse("inbound_message.json")
    assert result.events == ()
    assert result.ignored == 1
    assert result.ignored_reasons == ("inbound message",)


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("unknown_status.json", r"'teleported' is not a known Vonage status"),
        # `sent` is not among the documented Messages API statuses: dead-letter, don't guess.
        ("undocumented_sent.json", r"'sent' is not a known Vonage status"),
        ("missing_uuid.json", r"body\.message_uuid is missing"),
        ("missing_status.json", r"body\.status is missing"),
        ("bad_timestamp.json", r"body\.timestamp is not a recognised time"),
        ("array_body.json", r"expected an object"),
    ],
)
def test_unparseable_statuses_say_why(name: str, reason: str) -> None:
    with pytest.raises(UnparseableWebhook, match=reason):
        parse(name)


def test_event_id_is_stable_and_tells_statuses_apart() -> None:
    a = parse("status_read.json").events[0]
    assert a.event_id == parse("status_read.json").events[0].event_id
    assert a.event_id != parse("status_submitted.json").events[0].event_id


_ANY_JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.floats() | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8,
)
_BODIES = st.fixed_dictionaries(
    {},
    optional={
        "message_uuid": _ANY_JSON | st.just(UUID),
        "status": _ANY_JSON | st.sampled_from(["submitted", "delivered", "read", "rejected", "undeliverable"]),
        "timestamp": _ANY_JSON | st.sampled_from(["2025-06-15T23:27:41.118Z", "2025-06-15 23:27:41"]),
        "error": _ANY_JSON
        | st.fixed_dictionaries(
            {}, optional={"type": _ANY_JSON | st.just("x#1"), "title": _ANY_JSON, "detail": _ANY_JSON}
        ),
        "whatsapp": _ANY_JSON | st.fixed_dictionaries({"conversation": _ANY_JSON}),
        "to": _ANY_JSON,
        "client_ref": _ANY_JSON,
        "message_type": _ANY_JSON,
    },
)


@settings(max_examples=400, deadline=None)
@given(body=_BODIES)
def test_any_shape_is_parsed_or_refused_never_a_crash(body: dict[str, Any]) -> None:
    try:
        result = ADAPTER.parse(raw_webhook("vonage", orjson.dumps(body)))
    except UnparseableWebhook:
        return
    assert len(result.events) + result.ignored == 1
