"""Send-cohort funnels: per-message contributions, deltas that move counts, the published truth."""

from __future__ import annotations

import dataclasses
from collections import Counter

from hypothesis import given, settings
from hypothesis import strategies as st

from streams.clock import now_ms
from streams.core.batches import decode_signals, expiry_signals, plan_track
from streams.core.records import state_from_bytes
from streams.domain.events import StatusEvent
from streams.domain.funnel import Cohort, CohortRow, delta, fold, funnel_of, funnel_record, funnel_view, select
from streams.domain.lattice import MessageState, merge
from streams.domain.metrics import bucket_of
from streams.domain.status import RANKED, FailureReason, Status
from tests.factories import status_event

HOUR = 3_600_000


def fold_states(events: list[StatusEvent]) -> dict[str, MessageState]:
    states: dict[str, MessageState] = {}
    for event in events:
        states[event.message_id] = merge(states.get(event.message_id), event)
    return states


def funnel_by_key(states: dict[str, MessageState]) -> dict[str, Counter[str]]:
    return {cohort.key: counts for cohort, counts in funnel_of(states.values(), HOUR).items()}


def test_a_message_counts_once_per_stage_and_moves_as_it_progresses() -> None:
    sent = merge(None, status_event(Status.SENT, 1_000, campaign="c1"))
    delivered = merge(sent, status_event(Status.DELIVERED, 2_000, campaign="c1"))
    read = merge(delivered, status_event(Status.READ, 9_000, campaign="c1"))
    channel, campaign = Cohort("meta", "default", None, 0), Cohort("meta", "default", "c1", 0)
    assert delta(None, sent, HOUR) == {channel: {"attempted": 1, "sent": 1}, campaign: {"attempted": 1, "sent": 1}}
    assert delta(sent, delivered, HOUR)[channel] == {"sent": -1, "delivered": 1, f"s2d:{bucket_of(1_000)}": 1}
    assert delta(delivered, read, HOUR)[campaign] == {"read": 1, f"d2r:{bucket_of(7_000)}": 1}
    assert delta(read, read, HOUR) == {}


def test_read_without_delivered_counts_as_delivered_implied() -> None:
    read = merge(None, status_event(Status.READ, 5_000))
    counts = funnel_of([read], HOUR)[Cohort("meta", "default", None, 0)]
    assert counts == {"attempted": 1, "delivered": 1, "delivered_implied": 1, "read": 1, "d2r:0": 1}


def test_failed_then_delivered_moves_from_failed_to_delivered() -> None:
    failed = merge(None, status_event(Status.FAILED, 1_000, failure_reason=FailureReason.ERROR))
    assert delta(None, failed, HOUR)[Cohort("meta", "default", None, 0)] == {
        "attempted": 1,
        "failed": 1,
        "reason:error": 1,
        "code:none": 1,
    }
    delivered = merge(failed, status_event(Status.DELIVERED, 2_000))
    assert delta(failed, delivered, HOUR)[Cohort("meta", "default", None, 0)] == {
        "failed": -1,
        "reason:error": -1,
        "code:none": -1,
        "delivered": 1,
    }


def test_an_earlier_event_arriving_late_moves_the_message_to_the_earlier_cohort() -> None:
    delivered = merge(None, status_event(Status.DELIVERED, HOUR + 5))
    sent = merge(delivered, status_event(Status.SENT, HOUR - 5))
    moved = delta(delivered, sent, HOUR)
    assert moved[Cohort("meta", "default", None, HOUR)] == {"attempted": -1, "delivered": -1}
    assert moved[Cohort("meta", "default", None, 0)] == {"attempted": 1, "delivered": 1, f"s2d:{bucket_of(10)}": 1}


def test_expiry_moves_only_pending_messages_to_expired() -> None:
    sent = merge(None, status_event(Status.SENT, 1_000, message_id="a"))
    read = merge(None, status_event(Status.READ, 1_000, message_id="b"))
    (signals,) = expiry_signals([sent, read], HOUR)
    _, _, view = decode_signals(signals[1])
    assert view.funnel == [(None, 0, {"sent": -1, "expired": 1})]


def test_rates_are_cohort_ratios_within_bounds() -> None:
    events = [status_event(Status.SENT, 1_000, message_id=str(i)) for i in range(10)]
    events += [status_event(Status.READ, 2_000, message_id=str(i)) for i in range(3)]
    events += [status_event(Status.FAILED, 2_000, message_id="9", failure_reason=FailureReason.REJECTED)]
    rows = [CohortRow(cohort, counts) for cohort, counts in funnel_of(fold_states(events).values(), HOUR).items()]
    view = funnel_view("meta", "default", rows, HOUR)
    assert (view["attempted"], view["delivered"], view["read"], view["failed"]) == (10, 3, 3, 1)
    assert (view["delivery_rate"], view["read_rate"], view["failure_rate"]) == (0.3, 1.0, 0.1)
    assert view["pending"] == view["pending_sent"] == 6
    assert view["failures_by_reason"] == {"rejected": 1}


def test_selection_by_campaign_and_period() -> None:
    rows = [
        CohortRow(Cohort("meta", "default", None, 0)),
        CohortRow(Cohort("meta", "default", None, HOUR)),
        CohortRow(Cohort("meta", "default", "c1", HOUR)),
    ]
    assert [r.cohort.start for r in select(rows, since=HOUR)] == [HOUR]
    assert [r.cohort.start for r in select(rows, until=HOUR)] == [0]
    assert [r.cohort.campaign for r in select(rows, campaign="c1")] == ["c1"]


def test_a_signals_record_read_again_is_not_counted_twice_but_republished() -> None:
    row = CohortRow(Cohort("meta", "default", None, 0))
    assert row.apply({"attempted": 1, "sent": 1}, offset=7)
    first = row.publish(HOUR)
    assert not row.apply({"attempted": 1, "sent": 1}, offset=7)
    again = row.publish(HOUR)
    assert again == first
    assert first["attempted"] == 1
    assert first["revision"] == 0
    restored = CohortRow.from_bytes(row.to_bytes())
    assert restored.counts == row.counts
    assert (restored.revision, restored.applied) == (0, 7)


# The property: whatever the order, repeats, batching and timing of a generated stream of
# webhooks, the last published record per key equals the funnel computed from the final states.

_reports = st.lists(
    st.tuples(
        st.sampled_from(["m1", "m2", "m3", "m4", "m5"]),
        st.sampled_from(list(RANKED)),
        st.integers(0, 3 * HOUR),
        st.sampled_from([None, "c1", "c2"]),
        st.sampled_from([None, "131026", "470"]),
    ),
    min_size=1,
    max_size=30,
)


def _event(message_id: str, status: Status, at: int, campaign: str | None, code: str | None) -> StatusEvent:
    event = status_event(status, at, message_id=message_id, campaign=campaign)
    if status is Status.FAILED:
        reason = FailureReason.REJECTED if code == "470" else FailureReason.ERROR
        return dataclasses.replace(event, failure_reason=reason, error_code=code)
    return event


@settings(max_examples=200, deadline=None)
@given(_reports, st.randoms(use_true_random=False), st.integers(1, 6))
def test_published_funnel_equals_the_funnel_of_the_final_states(reports, rnd, batch) -> None:  # type: ignore[no-untyped-def]
    events = [_event(*report) for report in reports]
    stream = events + [rnd.choice(events) for _ in range(len(events) // 2)]  # repeats
    rnd.shuffle(stream)
    table: dict[bytes, bytes] = {}
    rows: dict[str, CohortRow] = {}
    published: dict[str, dict[str, object]] = {}
    offset = 0
    for i in range(0, len(stream), batch):
        plan = plan_track(stream[i : i + batch], table.get, 60_000, HOUR, at=now_ms())
        table.update(plan.writes)
        for _, value in plan.signals:
            provider, channel, view = decode_signals(value)
            offset += 1
            for _ in range(rnd.choice([1, 1, 2])):  # a record read again after a restart
                touched: dict[str, CohortRow] = {}
                fold(touched, rows.get, provider=provider, channel=channel, deltas=view.funnel, offset=offset)
                for key, row in touched.items():
                    rows[key] = CohortRow.from_bytes(row.to_bytes())  # through the table's format
                    published[key] = row.publish(HOUR)
                    rows[key].revision = row.revision
    finals = [state_from_bytes(key, value) for key, value in table.items()]
    expected = {
        cohort.key: funnel_record(CohortRow(cohort, counts), HOUR) for cohort, counts in funnel_of(finals, HOUR).items()
    }
    for key, record in published.items():
        if key not in expected:  # a cohort that all its messages left: it now counts nothing
            assert all(record[n] == 0 for n in ("attempted", "delivered", "read", "failed", "pending"))
            continue
        assert {k: v for k, v in record.items() if k != "revision"} == {
            k: v for k, v in expected[key].items() if k != "revision"
        }
        for name in ("delivery_rate", "read_rate", "failure_rate"):
            assert record[name] is None or 0.0 <= record[name] <= 1.0  # type: ignore[operator]
    assert set(expected) <= set(published)
