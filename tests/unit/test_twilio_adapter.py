"""Twilio form-encoded status callbacks → canonical events."""

from __future__ import annotations

import dataclasses
from typing import Any
from urllib.parse import urlencode

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streams.adapters.base import UnparseableWebhook
from streams.adapters.twilio import STATUS_MAP, TwilioAdapter
from streams.core.normalizer import normalize
from streams.domain.status import FailureReason, Status
from tests.adapter_harness import FORM, RECEIVED_AT, AdapterHarness
from tests.factories import event_fields, raw_webhook

ADAPTER = TwilioAdapter()
SID = "SM5f0c2a7d41b94e8c9a3e6b1d2c4f8a90"
MASKED_TO = "+55*********21"
TWILIO = AdapterHarness(
    ADAPTER, content_type=FORM, defaults={"message_id": SID, "recipient": MASKED_TO, "time_from_receipt": True}
)
raw = TWILIO.raw
parse = TWILIO.parse


def expected(status: Status, word: str, **overrides: Any) -> dict[str, Any]:
    """Every canonical field of a Twilio event: the time is always receipt, flagged."""
    return TWILIO.expected(status, word, **overrides)


CASES: dict[str, dict[str, Any]] = {
    "status_accepted.form": expected(Status.QUEUED, "accepted"),
    "status_scheduled.form": expected(Status.QUEUED, "scheduled"),
    "status_queued.form": expected(Status.QUEUED, "queued"),
    "status_sending.form": expected(Status.CREATED, "sending"),
    "status_sent.form": expected(Status.SENT, "sent"),
    "status_delivered.form": expected(Status.DELIVERED, "delivered"),
    "status_read.form": expected(Status.READ, "read"),
    "status_canceled.form": expected(Status.CANCELED, "canceled"),
    "status_undelivered_not_on_whatsapp.form": expected(
        Status.FAILED, "undelivered", failure_reason=FailureReason.NOT_FOUND, error_code="63024"
    ),
    "status_undelivered_outside_window.form": expected(
        Status.FAILED,
        "undelivered",
        failure_reason=FailureReason.EXPIRED,
        error_code="63016",
        error_title="Failed to send freeform message because you are outside the allowed window",
    ),
    "status_failed_invalid_to.form": expected(
        Status.FAILED, "failed", failure_reason=FailureReason.NOT_FOUND, error_code="21211"
    ),
    "status_failed_not_mobile.form": expected(
        Status.FAILED, "failed", failure_reason=FailureReason.NOT_FOUND, error_code="21614"
    ),
    "status_failed_unsubscribed.form": expected(
        Status.FAILED, "failed", failure_reason=FailureReason.REJECTED, error_code="21610"
    ),
    "status_failed_no_code.form": expected(Status.FAILED, "failed", failure_reason=FailureReason.ERROR),
    "status_delivered_error_code_zero.form": expected(Status.DELIVERED, "delivered"),
    "sms_sid_only.form": expected(
        Status.SENT,
        "sent",
        message_id="SM0d9e8f7a6b5c4d3e2f1a0b9c8d7e6f5a",
        message_key="twilio:default:SM0d9e8f7a6b5c4d3e2f1a0b9c8d7e6f5a",
        recipient="+44********23",
    ),
    "no_recipient.form": expected(Status.DELIVERED, "delivered", recipient=None),
}


@pytest.mark.parametrize(("name", "fields"), CASES.items(), ids=list(CASES))
def test_every_canonical_field(name: str, fields: dict[str, Any]) -> None:
    result = parse(name)
    (event,) = result.events
    actual = event_fields(event)
    assert actual == fields
    assert result.ignored == 0


@pytest.mark.parametrize(
    ("name", "word"), [("inbound_received.form", "received"), ("inbound_receiving.form", "receiving")]
)
def test_inbound_is_ignored_with_a_reason_not_an_error(name: str, word: str) -> None:
    result = parse(name)
    assert result.events == ()
    assert result.ignored == 1
    assert result.ignored_reasons == (f"inbound message ({word})",)


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("unknown_status.form", r"'teleported' is not a known Twilio status"),
        ("missing_sid.form", r"no MessageSid"),
        ("missing_status.form", r"no MessageStatus"),
        ("conflicting_status.form", r"MessageStatus has conflicting values"),
        ("not_a_form.form", r"not a valid form"),
        ("bad_percent_encoding.form", r"not UTF-8"),
        ("not_utf8.form", r"not UTF-8"),
        ("empty.form", r"no MessageSid"),
    ],
)
def test_unparseable_callbacks_say_why(name: str, reason: str) -> None:
    with pytest.raises(UnparseableWebhook, match=reason):
        parse(name)


def test_redelivered_callback_keeps_its_event_id_though_received_later() -> None:
    first = parse("status_delivered.form").events[0]
    again = ADAPTER.parse(dataclasses.replace(raw("status_delivered.form"), received_at=RECEIVED_AT + 60_000)).events[0]
    assert again.occurred_at == RECEIVED_AT + 60_000
    assert again.event_id == first.event_id


def test_event_id_distinguishes_statuses_and_messages() -> None:
    ids = {
        parse(name).events[0].event_id for name in ("status_sent.form", "status_delivered.form", "sms_sid_only.form")
    }
    assert len(ids) == 3


def test_full_number_never_leaves_normalize() -> None:
    raw = TWILIO.raw("status_delivered.form")
    (event,) = normalize(raw.to_avro()).events
    assert event.recipient is not None
    assert "987654" not in event.recipient
    assert "whatsapp" not in event.recipient


_FIELDS = st.sampled_from(
    ["MessageSid", "SmsSid", "MessageStatus", "SmsStatus", "ErrorCode", "To", "ErrorMessage", "x"]
)
_VALUES = st.text(max_size=12) | st.sampled_from([*STATUS_MAP, "received", "whatsapp:+15551234567"])


@settings(max_examples=400, deadline=None)
@given(pairs=st.lists(st.tuples(_FIELDS, _VALUES), max_size=6), junk=st.binary(max_size=8))
def test_any_form_is_parsed_or_refused_never_a_crash(pairs: list[tuple[str, str]], junk: bytes) -> None:
    for body in (urlencode(pairs).encode(), urlencode(pairs).encode() + junk):
        try:
            result = ADAPTER.parse(raw_webhook("twilio", body, content_type=FORM))
        except UnparseableWebhook:
            continue
        assert len(result.events) + result.ignored == 1
