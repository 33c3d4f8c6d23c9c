"""Metric folding: transitions, rates, latency percentiles, mergeable partials."""

from __future__ import annotations

import functools

from hypothesis import given, settings
from hypothesis import strategies as st

from streams.domain.lattice import merge
from streams.domain.metrics import (
    Scope,
    WindowAggregate,
    bucket_of,
    contributions,
    merge_all,
    metric_record,
    percentiles,
)
from streams.domain.status import RANKED, FailureReason, Status
from tests.factories import status_event

MIN = 60_000


def changes_of(events):  # type: ignore[no-untyped-def]
    state = None
    parts = []
    for event in events:
        new = merge(state, event)
        if new.reported() != (state.reported() if state else None):
            parts.append(contributions(state, new, MIN))
        state = new
    return merge_all(parts)


def test_transitions_count_once_per_message_in_the_window_of_their_time() -> None:
    total = changes_of(
        [
            status_event(Status.SENT, 10_000, campaign="c1"),
            status_event(Status.SENT, 10_000, campaign="c1"),  # repeat
            status_event(Status.DELIVERED, 70_000, campaign="c1"),
            status_event(Status.READ, 75_000, campaign="c1"),
        ]
    )
    channel = Scope("meta", "default")
    campaign = Scope("meta", "default", "c1")
    assert total[(channel, 0)].transitions == {"sent": 1}
    assert total[(channel, 60_000)].transitions == {"delivered": 1, "read": 1}
    assert total[(campaign, 60_000)].transitions == total[(channel, 60_000)].transitions
    assert sum(total[(channel, 60_000)].sent_to_delivered) == 1
    assert total[(channel, 60_000)].sent_to_delivered[bucket_of(60_000)] == 1


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.tuples(st.sampled_from(list(RANKED)), st.integers(0, 5 * MIN)), min_size=1, max_size=8),
    st.randoms(),
)
def test_window_totals_do_not_depend_on_arrival_order_for_transitions(reports, rnd) -> None:  # type: ignore[no-untyped-def]
    events = [status_event(status, at) for status, at in reports]
    shuffled = list(events)
    rnd.shuffle(shuffled)

    def transitions(total):  # type: ignore[no-untyped-def]
        return {k: sum(a.transitions.values()) for k, a in total.items() if sum(a.transitions.values())}

    # Every ranked status of the message is counted exactly once, whatever the order.
    assert sum(transitions(changes_of(events)).values()) == len({s for s, _ in reports})
    assert sum(transitions(changes_of(shuffled)).values()) == len({s for s, _ in reports})


def test_metric_record_rates_and_percentiles() -> None:
    agg = WindowAggregate()
    agg.transitions.update({"sent": 10, "delivered": 8, "read": 4, "failed": 2})
    agg.failures_by_reason["not_found"] = 2
    for latency in [500] * 9 + [50_000]:
        agg.sent_to_delivered[bucket_of(latency)] += 1
    record = metric_record(Scope("meta", "shop"), 0, MIN, agg, revision=0, final=False)
    assert record["delivery_rate"] == 0.8
    assert record["read_rate"] == 0.5
    assert record["failure_rate"] == 2 / 12
    assert record["sent_to_delivered_ms"] == {"p50": 500, "p90": 500, "p99": 60_000}
    assert record["delivered_to_read_ms"] == {}
    again = metric_record(Scope("meta", "shop"), 0, MIN, agg, revision=1, final=False)
    assert again["metric_id"] == record["metric_id"]


def test_partials_merge_to_the_whole() -> None:
    a, b = WindowAggregate(), WindowAggregate()
    a.transitions["sent"] = 2
    b.transitions["sent"] = 3
    b.failures_by_code["131026"] = 1
    a.merge(b)
    assert a.transitions["sent"] == 5
    assert WindowAggregate.from_wire(a.to_wire()) == a
    assert percentiles([0] * 19) == {}


def test_failures_are_counted_by_reason_and_code() -> None:
    failed = status_event(Status.FAILED, 1_000, failure_reason=FailureReason.NOT_FOUND)
    total = changes_of([failed])
    agg = total[(Scope("meta", "default"), 0)]
    assert agg.failures_by_reason == {"not_found": 1}
    assert agg.failures_by_code == {"none": 1}
    assert functools.reduce(lambda x, y: x + y, agg.transitions.values()) == 1
