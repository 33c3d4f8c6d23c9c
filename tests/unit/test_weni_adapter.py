"""Weni-forwarded bodies (Cloud API, On-Premise, courier codes) → canonical events."""

from __future__ import annotations

import contextlib
import re
from typing import Any
from urllib.parse import urlencode

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streams.adapters.base import ParseResult, UnparseableWebhook
from streams.adapters.weni import WeniAdapter
from streams.domain.status import FailureReason, Status
from tests.adapter_harness import FORM, RECEIVED_AT, AdapterHarness
from tests.factories import event_fields, raw_webhook, refusal

ADAPTER = WeniAdapter()
CLOUD_ID = "wamid.HBgNNTU4Mjk5OTk5OTk5ORUCABEYEjE0QkQ5QjU0RjlGQ0MzQzlBMgA="
ONPREM_ID = "gBGGVYKZmZmZAgk1mXdh2Qh2Zo8"
MASKED = "558********99"
WENI = AdapterHarness(ADAPTER, defaults={"recipient": MASKED})
parse = WENI.parse


def expected(
    status: Status, word: str, occurred_at: int, message_id: str = ONPREM_ID, **overrides: Any
) -> dict[str, Any]:
    """Every canonical field of a Weni event."""
    return WENI.expected(status, word, occurred_at=occurred_at, message_id=message_id, **overrides)


CASES: dict[str, dict[str, Any]] = {
    "cloud_read.json": expected(Status.READ, "read", 1_750_030_030_000, CLOUD_ID),
    "cloud_sent_with_campaign.json": expected(
        Status.SENT,
        "sent",
        1_750_030_010_000,
        CLOUD_ID,
        campaign="weni-broadcast-12",
        conversation_id="conv-1",
        pricing_category="utility",
    ),
    "onpremise_sent.json": expected(Status.SENT, "sent", 1_750_030_010_000),
    "onpremise_delivered.json": expected(Status.DELIVERED, "delivered", 1_750_030_020_000),
    "onpremise_read.json": expected(Status.READ, "read", 1_750_030_030_000),
    "onpremise_failed_window_closed.json": expected(
        Status.FAILED,
        "failed",
        1_750_030_040_000,
        failure_reason=FailureReason.EXPIRED,
        error_code="470",
        error_title=(
            "Message failed to send because more than 24 hours have passed "
            "since the customer last replied to this number"
        ),
    ),
    "onpremise_failed_not_on_whatsapp.json": expected(
        Status.FAILED,
        "failed",
        1_750_030_041_000,
        failure_reason=FailureReason.NOT_FOUND,
        error_code="1013",
        error_title="User is not valid",
    ),
    "onpremise_warning.json": expected(
        Status.WARNING, "warning", 1_750_030_050_000, error_code="1025", error_title="Item in catalog is not available"
    ),
    "onpremise_deleted.json": expected(Status.DELETED, "deleted", 1_750_030_060_000),
    "onpremise_missing_timestamp.json": expected(Status.DELIVERED, "delivered", RECEIVED_AT, time_from_receipt=True),
    "courier_flat_delivered_iso.json": expected(
        Status.DELIVERED, "D", 1_750_029_620_000, "b9a3c1d2-5e6f-4a7b-8c9d-0e1f2a3b4c5d"
    ),
    "courier_flat_failed_external_id.json": expected(
        Status.FAILED,
        "F",
        1_750_029_640_250,
        "wamid.FLATFAIL",
        failure_reason=FailureReason.NOT_FOUND,
        error_code="131026",
        error_title="Message undeliverable",
    ),
    "courier_flat_errored_no_time.json": expected(
        Status.RETRYING,
        "E",
        RECEIVED_AT,
        "3f2e1d0c-9b8a-4765-8432-10fedcba9876",
        time_from_receipt=True,
        recipient=None,
    ),
}


@pytest.mark.parametrize(("name", "fields"), CASES.items(), ids=list(CASES))
def test_every_canonical_field(name: str, fields: dict[str, Any]) -> None:
    result = parse(name)
    (event,) = result.events
    assert event_fields(event) == fields
    assert result.ignored == 0


def test_every_courier_code() -> None:
    events = parse("onpremise_courier_codes.json").events
    assert [(e.message_id, e.provider_status, e.status, e.occurred_at) for e in events] == [
        ("courier-P", "P", Status.QUEUED, 1_750_030_000_000),
        ("courier-Q", "Q", Status.QUEUED, 1_750_030_001_000),
        ("courier-W", "W", Status.SENT, 1_750_030_002_000),
        ("courier-S", "S", Status.SENT, 1_750_030_003_000),
        ("courier-D", "D", Status.DELIVERED, 1_750_030_004_000),
        ("courier-V", "V", Status.READ, 1_750_030_005_000),
        ("courier-R", "R", Status.READ, 1_750_030_006_000),
        ("courier-E", "E", Status.RETRYING, 1_750_030_007_000),
        ("courier-F", "F", Status.FAILED, 1_750_030_008_000),
    ]
    assert [e.failure_reason for e in events if e.status is Status.FAILED] == [FailureReason.ERROR]
    assert Status.RETRYING.is_side_event


def test_cloud_batch_with_inbound() -> None:
    result = parse("cloud_batch_with_inbound.json")
    assert [(e.message_id, e.status) for e in result.events] == [
        ("wamid.W1", Status.SENT),
        ("wamid.W2", Status.DELIVERED),
    ]
    assert result.ignored_reasons == ("inbound message",)


def test_on_premise_inbound_only_is_ignored() -> None:
    result = parse("onpremise_inbound_only.json")
    assert result.events == ()
    assert result.ignored == 1


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("unknown_status.json", r"statuses\[0\]\.status 'X' is not a known Weni status"),
        ("flat_without_id.json", r"no id, message_id or external_id"),
        ("no_known_shape.json", r"no entry\[\], statuses\[\] or status"),
    ],
)
def test_unparseable_bodies_say_why(name: str, reason: str) -> None:
    assert re.search(reason, refusal(ADAPTER, WENI.raw(name)))


@pytest.mark.parametrize(
    "body", [b"not json", b"[]", b'{"statuses": "x"}', b'{"statuses": [{"id": "a"}]}', b'{"entry": [{"changes": [3]}]}']
)
def test_garbage_is_unparseable(body: bytes) -> None:
    assert refusal(ADAPTER, raw_webhook("weni", body))


# --- form bodies (streams/adapters/forms.py): the same shapes, posted as forms ----------------------

FORM_CASES: dict[str, dict[str, Any]] = {
    "form_onpremise_bracketed.form": expected(Status.DELIVERED, "delivered", 1_750_030_020_000),
    "form_onpremise_failed_bracketed.form": CASES["onpremise_failed_window_closed.json"],
    "form_onpremise_statuses_json.form": expected(Status.READ, "read", 1_750_030_030_000),
    "form_cloud_payload.form": expected(Status.READ, "read", 1_750_030_030_000, CLOUD_ID),
    "form_cloud_bracketed.form": expected(Status.READ, "read", 1_750_030_030_000, CLOUD_ID),
    "form_courier_flat.form": CASES["courier_flat_delivered_iso.json"],
}


def parse_form(name: str) -> ParseResult:
    return WENI.parse(name, content_type=FORM)


@pytest.mark.parametrize(("name", "fields"), FORM_CASES.items(), ids=list(FORM_CASES))
def test_form_bodies_give_every_canonical_field(name: str, fields: dict[str, Any]) -> None:
    result = parse_form(name)
    (event,) = result.events
    assert event_fields(event) == fields
    assert (result.ignored, result.rejected) == (0, ())


def test_a_form_and_its_json_twin_give_the_same_event() -> None:
    json_event = parse("onpremise_delivered.json").events
    assert parse_form("form_onpremise_bracketed.form").events == json_event
    assert parse_form("form_cloud_payload.form").events == parse("cloud_read.json").events


def test_a_bad_status_of_a_form_batch_is_rejected_alone() -> None:
    result = parse_form("form_onpremise_batch_one_bad.form")
    assert [(e.message_id, e.status) for e in result.events] == [
        ("weni-ok-1", Status.SENT),
        ("weni-ok-2", Status.DELIVERED),
    ]
    assert [r.dead_letter_reason for r in result.rejected] == [
        "statuses[1].status 'teleported' is not a known Weni status"
    ]


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (WENI.body("form_conflicting.form"), r"form field 'status' has conflicting values"),
        (b"id=a&status", r"not a valid form"),
        (b"id=%ff&status=D", r"not UTF-8"),
        (b"nothing=here", r"no entry\[\], statuses\[\] or status"),
        (b"0=a&1=b", r"list of values"),
        (b"status=D&status[code]=1", r"'status\[code\]' nests under a field that has a value"),
    ],
)
def test_unreadable_forms_say_why(body: bytes, reason: str) -> None:
    assert re.search(reason, refusal(ADAPTER, raw_webhook("weni", body, FORM)))


# Field names of Weni's bodies, and bracketed ones: forms nest by them (streams/adapters/forms.py).
_KEYS = [
    "entry",
    "changes",
    "value",
    "statuses",
    "messages",
    "id",
    "message_id",
    "external_id",
    "status",
    "timestamp",
    "created_on",
    "recipient_id",
    "urn",
    "errors",
    "error",
    "code",
    "D",
    "E",
    "read",
]
_FORM_NAMES = st.sampled_from([*_KEYS, "statuses[0][id]", "statuses[0][status]", "statuses[]", "x[1][2]"])


@settings(max_examples=300, deadline=None)
@given(pairs=st.lists(st.tuples(_FORM_NAMES | st.text(max_size=12), st.text(max_size=12)), max_size=8))
def test_any_form_is_parsed_or_refused_never_a_crash(pairs: list[tuple[str, str]]) -> None:
    body = urlencode(pairs, errors="surrogatepass").encode("ascii")
    with contextlib.suppress(UnparseableWebhook):
        ADAPTER.parse(raw_webhook("weni", body, FORM))
