"""The join lattice: order- and duplicate-independent, monotone, with the rules of docs/architecture.md."""

from __future__ import annotations

import dataclasses
import functools

from hypothesis import given, settings
from hypothesis import strategies as st

from streams.domain.events import StatusEvent
from streams.domain.lattice import MessageState, join, merge
from streams.domain.status import RANKED, FailureReason, Status
from tests.factories import status_event

statuses = st.sampled_from([*RANKED, Status.DELETED, Status.WARNING])
events = st.builds(
    status_event,
    status=statuses,
    occurred_at=st.integers(min_value=1_700_000_000_000, max_value=1_700_000_100_000),
    failure_reason=st.sampled_from([None, *FailureReason]),
    campaign=st.sampled_from([None, "c1", "c2"]),
)


def fold(evs: list[StatusEvent]) -> MessageState | None:
    return functools.reduce(merge, evs, None)  # type: ignore[arg-type]


@given(st.lists(events, min_size=1, max_size=12), st.randoms())
def test_any_order_gives_the_same_state(evs: list[StatusEvent], rnd) -> None:  # type: ignore[no-untyped-def]
    shuffled = list(evs)
    rnd.shuffle(shuffled)
    assert fold(evs) == fold(shuffled)


@given(st.lists(events, min_size=1, max_size=12), st.lists(st.integers(0, 11), max_size=10))
def test_repeats_change_nothing(evs: list[StatusEvent], picks: list[int]) -> None:
    repeated = evs + [evs[i % len(evs)] for i in picks]
    assert fold(evs) == fold(repeated)


@given(st.lists(events, min_size=1, max_size=12), events)
def test_rank_never_goes_down(evs: list[StatusEvent], extra: StatusEvent) -> None:
    before = fold(evs)
    after = merge(before, extra)
    rank_before = before.status.rank if before and before.status else 0
    rank_after = after.status.rank if after.status else 0
    assert rank_after >= rank_before


@given(st.lists(events, min_size=1, max_size=8), st.lists(events, min_size=1, max_size=8))
def test_join_of_folds_is_fold_of_all(a: list[StatusEvent], b: list[StatusEvent]) -> None:
    fa, fb = fold(a), fold(b)
    assert fa is not None and fb is not None
    assert join(fa, fb) == fold(a + b)


def test_each_status_keeps_its_earliest_time() -> None:
    state = fold([status_event(Status.SENT, 2_000), status_event(Status.SENT, 1_000), status_event(Status.SENT, 3_000)])
    assert state is not None and state.sent_at == 1_000


def test_read_without_delivered_implies_delivery_at_read_time() -> None:
    state = fold([status_event(Status.SENT, 1_000), status_event(Status.READ, 5_000)])
    assert state is not None
    assert state.status is Status.READ
    assert state.delivered_implied
    assert state.effective_delivered_at == 5_000


def test_a_real_delivery_replaces_the_implied_one_even_when_late() -> None:
    state = fold([status_event(Status.READ, 5_000), status_event(Status.DELIVERED, 4_000)])
    assert state is not None
    assert not state.delivered_implied
    assert state.effective_delivered_at == 4_000


def test_failure_after_delivery_does_not_lower_and_is_an_anomaly() -> None:
    state = fold(
        [status_event(Status.DELIVERED, 1_000), status_event(Status.FAILED, 2_000, failure_reason=FailureReason.ERROR)]
    )
    assert state is not None
    assert state.status is Status.DELIVERED
    assert state.anomaly


def test_success_after_failure_wins_and_is_not_an_anomaly() -> None:
    state = fold(
        [
            status_event(Status.FAILED, 1_000, failure_reason=FailureReason.EXPIRED),
            status_event(Status.DELIVERED, 2_000),
        ]
    )
    assert state is not None
    assert state.status is Status.DELIVERED
    assert not state.anomaly
    assert state.failure is not None and state.failure.reason is FailureReason.EXPIRED


def test_side_events_change_nothing() -> None:
    base = fold([status_event(Status.SENT, 1_000)])
    assert merge(base, status_event(Status.DELETED, 9_000)) == base


@settings(max_examples=1500, deadline=None)
@given(st.lists(events, min_size=1, max_size=15), st.randoms())
def test_thousands_of_orders_and_repeats_agree(evs: list[StatusEvent], rnd) -> None:  # type: ignore[no-untyped-def]
    reordered = evs + [rnd.choice(evs) for _ in range(rnd.randint(0, 5))]
    rnd.shuffle(reordered)
    assert fold(evs) == fold(reordered)


@given(st.lists(events, min_size=1, max_size=12))
def test_each_status_keeps_the_earliest_time_of_its_events(evs: list[StatusEvent]) -> None:
    state = fold(evs)
    assert state is not None
    for status in RANKED:
        times = [e.occurred_at for e in evs if e.status is status]
        assert state.time_of(status) == (min(times) if times else None)


def test_recipient_and_correlation_are_kept_whatever_the_order() -> None:
    a = dataclasses.replace(status_event(Status.QUEUED, 1_000), recipient="155****34", correlation_id=None)
    b = dataclasses.replace(status_event(Status.SENT, 2_000), recipient=None, correlation_id="wamid.X")
    for order in ([a, b], [b, a]):
        state = fold(order)
        assert state is not None
        assert (state.recipient, state.correlation_id) == ("155****34", "wamid.X")
