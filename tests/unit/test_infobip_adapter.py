"""Infobip batched delivery and seen reports → canonical events."""

from __future__ import annotations

import re
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streams.adapters.base import ParseResult, UnparseableWebhook
from streams.adapters.infobip import InfobipAdapter
from streams.domain.status import FailureReason, Status
from tests.adapter_harness import RECEIVED_AT, AdapterHarness
from tests.factories import event_fields, raw_webhook, refusal

ADAPTER = InfobipAdapter()
MID = "7f3c1e2a-9b4d-4c6e-8a1f-2d3b5c7e9a10"
OTHER = "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"
# doneAt 2025-06-15T20:27:41.118-0300 is 23:27:41.118 UTC.
DONE_AT = 1_750_030_061_118
# seenAt 2025-06-15T23:27:45.003+0000.
SEEN_AT = 1_750_030_065_003
MASKED_TO = "551********21"
INFOBIP = AdapterHarness(
    ADAPTER, defaults={"message_id": MID, "occurred_at": DONE_AT, "recipient": MASKED_TO, "campaign": "campaign-june"}
)
parse = INFOBIP.parse


def expected(status: Status, word: str, **overrides: Any) -> dict[str, Any]:
    """Every canonical field of an Infobip event, defaults from the full delivery report."""
    return INFOBIP.expected(status, word, **overrides)


def as_fields(result: ParseResult) -> list[dict[str, Any]]:
    return [event_fields(e) for e in result.events]


SEEN = expected(Status.READ, "SEEN", occurred_at=SEEN_AT, campaign=None)

CASES: dict[str, dict[str, Any]] = {
    "report_delivered.json": expected(Status.DELIVERED, "DELIVERED_TO_HANDSET"),
    "report_delivered_to_operator.json": expected(Status.SENT, "DELIVERED_TO_OPERATOR"),
    "report_pending_enroute.json": expected(Status.SENT, "PENDING_ENROUTE"),
    "report_pending_waiting_delivery.json": expected(Status.SENT, "PENDING_WAITING_DELIVERY"),
    "report_pending_accepted.json": expected(Status.QUEUED, "PENDING_ACCEPTED"),
    "report_pending_group_only.json": expected(
        Status.SENT, "PENDING", occurred_at=RECEIVED_AT, time_from_receipt=True, recipient=None, campaign=None
    ),
    "report_undeliverable.json": expected(
        Status.FAILED,
        "UNDELIVERABLE_NOT_DELIVERED",
        failure_reason=FailureReason.ERROR,
        error_code="27",
        error_title="EC_ABSENT_SUBSCRIBER",
    ),
    "report_undeliverable_unknown_subscriber.json": expected(
        Status.FAILED,
        "UNDELIVERABLE_NOT_DELIVERED",
        failure_reason=FailureReason.NOT_FOUND,
        error_code="1",
        error_title="EC_UNKNOWN_SUBSCRIBER",
    ),
    "report_undeliverable_rejected_operator.json": expected(
        Status.FAILED,
        "UNDELIVERABLE_REJECTED_OPERATOR",
        failure_reason=FailureReason.REJECTED,
        error_code="27",
        error_title="EC_ABSENT_SUBSCRIBER",
    ),
    "report_expired.json": expected(Status.FAILED, "EXPIRED_EXPIRED", failure_reason=FailureReason.EXPIRED),
    "report_rejected.json": expected(
        Status.FAILED,
        "REJECTED_NETWORK",
        failure_reason=FailureReason.REJECTED,
        error_code="4000",
        error_title="EC_OUTSIDE_WINDOW",
    ),
    "report_seen.json": SEEN,
    "report_missing_times.json": expected(
        Status.DELIVERED, "DELIVERED_TO_HANDSET", occurred_at=RECEIVED_AT, time_from_receipt=True, campaign=None
    ),
    # sentAt 2025-06-15T23:27:41.118Z: the same instant as DONE_AT, written in UTC.
    "report_sent_at_only.json": expected(Status.SENT, "PENDING_ENROUTE", recipient=None, campaign=None),
}


@pytest.mark.parametrize(("name", "fields"), CASES.items(), ids=list(CASES))
def test_every_canonical_field(name: str, fields: dict[str, Any]) -> None:
    result = parse(name)
    assert as_fields(result) == [fields]
    assert result.ignored == 0


def test_batch_gives_one_event_per_report_in_order() -> None:
    assert as_fields(parse("batch_three_reports.json")) == [
        expected(Status.DELIVERED, "DELIVERED_TO_HANDSET"),
        expected(
            Status.FAILED,
            "REJECTED_NETWORK",
            message_id=OTHER,
            message_key=f"infobip:default:{OTHER}",
            recipient="447*******23",
            campaign=None,
            failure_reason=FailureReason.REJECTED,
        ),
        SEEN,
    ]


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("unknown_group.json", r"groupName 'TELEPORTED' is not a known Infobip status group"),
        ("missing_results.json", r"no results\[\]"),
        ("empty_results.json", r"no results\[\]"),
        ("results_not_a_list.json", r"results must be a list"),
        ("missing_message_id.json", r"results\[0\]\.messageId is missing"),
        ("status_not_an_object.json", r"results\[0\]\.status must be an object"),
        ("time_without_zone.json", r"results\[0\]\.doneAt has no time zone"),
        ("not_json.json", r"not valid JSON"),
    ],
)
def test_unparseable_reports_say_why(name: str, reason: str) -> None:
    assert re.search(reason, refusal(ADAPTER, INFOBIP.raw(name)))


def test_event_id_is_stable_and_tells_reports_apart() -> None:
    a = parse("report_delivered.json").events[0]
    b = parse("report_delivered.json").events[0]
    seen = parse("report_seen.json").events[0]
    assert a.event_id == b.event_id
    assert a.event_id != seen.event_id


_ANY_JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.floats() | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8,
)
_GROUPS = st.sampled_from(["PENDING", "DELIVERED", "UNDELIVERABLE", "EXPIRED", "REJECTED", "pending", ""])
_TIMES = st.sampled_from(["2025-06-15T20:27:41.118-0300", "1750030061", "2025-06-15T20:27:41"]) | _ANY_JSON
# Mostly well-formed reports with hostile values, so both the parse and the refusal paths run.
_REPORTS = st.fixed_dictionaries(
    {
        "messageId": st.just(MID) | _ANY_JSON,
        "status": st.fixed_dictionaries(
            {"groupName": _GROUPS}, optional={"name": _ANY_JSON | st.just("PENDING_ACCEPTED")}
        )
        | _ANY_JSON,
    },
    optional={
        "error": _ANY_JSON | st.fixed_dictionaries({}, optional={"id": _ANY_JSON, "name": _ANY_JSON}),
        "doneAt": _TIMES,
        "sentAt": _TIMES,
        "seenAt": _TIMES,
        "to": _ANY_JSON,
        "callbackData": _ANY_JSON,
    },
)


@settings(max_examples=400, deadline=None)
@given(body=st.fixed_dictionaries({}, optional={"results": _ANY_JSON | st.lists(_REPORTS, max_size=3)}))
def test_any_shape_is_parsed_or_refused_never_a_crash(body: dict[str, Any]) -> None:
    try:
        result = ADAPTER.parse(raw_webhook("infobip", orjson.dumps(body)))
    except UnparseableWebhook:
        return
    # Every report stands alone: an event or a rejection of its own, naming its position.
    assert len(result.events) + len(result.rejected) == len(body["results"])
    assert all(r.dead_letter_reason.startswith(r.where) for r in result.rejected)
