"""Metric folding: transitions (activity), no window rates, latency percentiles, mergeable partials."""

from __future__ import annotations

import dataclasses
import functools

from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.codec import codec
from streams.clock import now_ms
from streams.core.batches import ChannelSignals, decode_signals, plan_track
from streams.domain.channel import ChannelState, Policy, apply_signals, observe, tick
from streams.domain.channel import view as channel_view
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


def test_metric_record_counts_activity_and_percentiles_without_rates() -> None:
    agg = WindowAggregate()
    agg.transitions.update({"sent": 10, "delivered": 8, "read": 4, "failed": 2})
    agg.failures_by_reason["not_found"] = 2
    for latency in [500] * 9 + [50_000]:
        agg.sent_to_delivered[bucket_of(latency)] += 1
    record = metric_record(Scope("meta", "shop"), 0, MIN, agg, revision=0, final=False)
    assert record["transitions"] == {"queued": 0, "created": 0, "sent": 10, "failed": 2, "delivered": 8, "read": 4}
    assert record["failures_by_reason"] == {"not_found": 2}
    # Deprecated: rates of one window's activity were no rates of messages (wa.funnel has those).
    assert (record["delivery_rate"], record["read_rate"], record["failure_rate"]) == (None, None, None)
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


# --- no window rate can leave [0, 1] -----------------------------------------------------------
#
# The window "rates" were ratios of one window's activity: a read whose delivery fell in an
# earlier window (or was never reported: Meta skips it) gave read / delivered = 200 %, and a
# provider without `sent` gave failed / (sent + failed) = failed / failed. Whatever stream the
# channel stage sees, no MetricWindow record (published, or on GET /channels) carries a rate
# outside [0, 1]: they are null, and the record still fits its schema.

_RATES = ("delivery_rate", "read_rate", "failure_rate")
_window_reports = st.lists(
    st.tuples(
        st.sampled_from(["m1", "m2", "m3", "m4", "m5", "m6"]),
        st.sampled_from(list(RANKED)),
        st.integers(0, 10 * MIN),
        st.sampled_from([None, "c1"]),
        st.sampled_from(["meta", "vonage"]),
    ),
    min_size=1,
    max_size=40,
)


def _rates_within_bounds(record: dict[str, object]) -> bool:
    return all(record[name] is None or 0.0 <= record[name] <= 1.0 for name in _RATES)  # type: ignore[operator]


@settings(max_examples=200, deadline=None)
@given(_window_reports, st.randoms(use_true_random=False), st.integers(1, 8))
def test_no_window_rate_leaves_zero_to_one_whatever_the_stream(reports, rnd, batch) -> None:  # type: ignore[no-untyped-def]
    events = [
        dataclasses.replace(status_event(status, at, message_id=m, campaign=campaign), provider=provider)
        for m, status, at, campaign, provider in reports
    ]
    stream = events + [rnd.choice(events) for _ in range(len(events) // 2)]  # repeats
    rnd.shuffle(stream)
    policy = Policy(window_ms=MIN, lateness_ms=3 * MIN, idle_close_ms=1)
    metric_codec = codec("metric_window")
    table: dict[bytes, bytes] = {}
    channels: dict[bytes, ChannelState] = {}
    published: list[dict[str, object]] = []
    now = 0
    for i in range(0, len(stream), batch):
        plan = plan_track(stream[i : i + batch], table.get, MIN, at=now_ms())
        table.update(plan.writes)
        now += rnd.choice([0, MIN // 2, 2 * MIN])
        ticks = [(key, ChannelSignals(s.provider, s.channel, tick=True).encode()) for key, s in channels.items()]
        for key, value in plan.signals + ticks:
            provider, channel, view = decode_signals(value)
            state = channels.setdefault(key, ChannelState(provider, channel))
            if view.windows:  # the normalize stage's signals move the watermark
                observe(state, max(start for _, start, _ in view.windows) + MIN, now)
            published += apply_signals(state, view, policy, now).metrics
    for state in channels.values():
        published += tick(state, policy, now + 10 * MIN).metrics
        windows = channel_view(state, policy)["windows"]
        assert isinstance(windows, list)
        assert all(_rates_within_bounds(w) for w in windows)
    assert published  # every generated stream closes some window
    for record in published:
        assert _rates_within_bounds(record)
        metric_codec.encode(record)  # fits schemas/metric_window.avsc


@given(st.dictionaries(st.sampled_from([s.value for s in RANKED]), st.integers(0, 10**9)))
def test_no_window_rate_leaves_zero_to_one_whatever_the_counts(transitions: dict[str, int]) -> None:
    agg = WindowAggregate()
    agg.transitions.update(transitions)
    record = metric_record(Scope("vonage", "main"), 0, MIN, agg, revision=0, final=True)
    assert _rates_within_bounds(record)
    assert record["transitions"] == {s.value: transitions.get(s.value, 0) for s in RANKED}
