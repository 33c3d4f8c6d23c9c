"""Stalled partitions: records behind a committed offset that nothing processes are re-read."""

from __future__ import annotations

from aiokafka import TopicPartition

from streams.faust_ext.stalls import Offsets, StalledPartitions

EV0, EV1 = TopicPartition("events", 0), TopicPartition("events", 1)


def test_a_partition_that_does_not_move_with_records_behind_it_is_due_after_the_bound() -> None:
    stalled = StalledPartitions(after_s=30)
    assert stalled.observe({EV0: Offsets(committed=1, end=2)}, now=0) == []
    assert stalled.observe({EV0: Offsets(committed=1, end=2)}, now=29.9) == []
    assert stalled.observe({EV0: Offsets(committed=1, end=2)}, now=30) == [(EV0, 1)]


def test_a_partition_that_moves_is_never_due_however_far_behind() -> None:
    stalled = StalledPartitions(after_s=30)
    for step in range(10):
        assert stalled.observe({EV0: Offsets(committed=100 * step, end=10_000)}, now=20.0 * step) == []


def test_a_caught_up_partition_is_never_due() -> None:
    stalled = StalledPartitions(after_s=30)
    for now in (0, 30, 60, 90):
        assert stalled.observe({EV0: Offsets(committed=7, end=7)}, now=now) == []


def test_a_partition_never_committed_resumes_from_the_log_start() -> None:
    stalled = StalledPartitions(after_s=5)
    stalled.observe({EV0: Offsets(committed=None, end=9, start=4)}, now=0)
    assert stalled.observe({EV0: Offsets(committed=None, end=9, start=4)}, now=5) == [(EV0, 4)]


def test_a_partition_is_reported_once_per_position_never_again_without_progress() -> None:
    stalled = StalledPartitions(after_s=30)
    stalled.observe({EV0: Offsets(committed=1, end=2)}, now=0)
    assert stalled.observe({EV0: Offsets(committed=1, end=2)}, now=30) == [(EV0, 1)]
    # Reading again from offset 1 did not help: reading again from 1 would not either.
    for now in (45, 60, 90, 600):
        assert stalled.observe({EV0: Offsets(committed=1, end=2)}, now=now) == []
    stalled.reset()  # not even after a rebalance
    stalled.observe({EV0: Offsets(committed=1, end=2)}, now=601)
    assert stalled.observe({EV0: Offsets(committed=1, end=2)}, now=700) == []
    # Once it moved, a new stall at the new position is reported again.
    stalled.observe({EV0: Offsets(committed=2, end=5)}, now=701)
    assert stalled.observe({EV0: Offsets(committed=2, end=5)}, now=731) == [(EV0, 2)]


def test_a_partition_merely_behind_is_never_due_while_the_worker_processes_it() -> None:
    # A backlog: the group's committed offset may hold still for a while (a long batch, a
    # commit that waits), but the worker keeps processing records of the partition.
    stalled = StalledPartitions(after_s=30)
    for step in range(20):
        offsets = {EV0: Offsets(committed=1, end=100_000)}
        assert stalled.observe(offsets, now=10.0 * step, processed={EV0: 500 * step}) == []
    # It stops processing: then, and only then, it is stalled.
    stalled.observe({EV0: Offsets(committed=1, end=100_000)}, now=200, processed={EV0: 9_999})
    assert stalled.observe({EV0: Offsets(committed=1, end=100_000)}, now=230, processed={EV0: 9_999}) == [(EV0, 1)]


def test_partitions_are_judged_apart_and_forgotten_when_no_longer_observed() -> None:
    stalled = StalledPartitions(after_s=30)
    stalled.observe({EV0: Offsets(committed=1, end=2), EV1: Offsets(committed=5, end=9)}, now=0)
    # EV1 moved; EV0 left this worker (another worker owns it now) and comes back later.
    assert stalled.observe({EV1: Offsets(committed=6, end=9)}, now=30) == []
    assert stalled.observe({EV0: Offsets(committed=1, end=2), EV1: Offsets(committed=6, end=9)}, now=40) == []
    assert stalled.observe({EV0: Offsets(committed=1, end=2), EV1: Offsets(committed=6, end=9)}, now=70) == [
        (EV0, 1),
        (EV1, 6),
    ]


def test_reset_starts_the_watch_afresh() -> None:
    stalled = StalledPartitions(after_s=30)
    stalled.observe({EV0: Offsets(committed=1, end=2)}, now=0)
    stalled.reset()
    assert stalled.observe({EV0: Offsets(committed=1, end=2)}, now=30) == []
    assert stalled.observe({EV0: Offsets(committed=1, end=2)}, now=60) == [(EV0, 1)]
