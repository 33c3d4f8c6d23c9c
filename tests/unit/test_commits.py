"""Offset commits never pass a record the worker has not processed (streams/faust_ext/commits.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from faust.types import TP
from hypothesis import given
from hypothesis import strategies as st

from streams.faust_ext.commits import GaplessCommitConsumer, first_missing
from streams.settings import WorkerSettings
from streams.topology import build_topology

EV0 = TP("events", 0)


def test_the_first_offset_that_is_neither_acknowledged_nor_a_gap_is_missing() -> None:
    assert first_missing(5, 6, []) == 5
    assert first_missing(5, 5, []) is None
    assert first_missing(5, 8, [(5, 8)]) is None
    assert first_missing(5, 8, [(5, 7)]) == 7
    assert first_missing(5, 9, [(6, 9)]) == 5
    assert first_missing(0, 10, [(7, 10), (0, 3), (3, 7)]) is None


@given(
    floor=st.integers(0, 30),
    span=st.integers(0, 30),
    gaps=st.lists(st.tuples(st.integers(0, 70), st.integers(1, 10)).map(lambda g: (g[0], g[0] + g[1])), max_size=6),
)
def test_first_missing_agrees_with_counting_offset_by_offset(
    floor: int, span: int, gaps: list[tuple[int, int]]
) -> None:
    head = floor + span
    covered = {offset for begin, end in gaps for offset in range(begin, end)}
    expected = next((offset for offset in range(floor, head) if offset not in covered), None)
    assert first_missing(floor, head, gaps) == expected


@pytest.fixture
async def consumer() -> AsyncIterator[GaplessCommitConsumer]:
    """The worker's Faust consumer, not started (its commit bookkeeping needs no broker); made
    inside the test's event loop, which the app adopts instead of making loops of its own."""
    app = build_topology(WorkerSettings(bootstrap_servers="127.0.0.1:1")).app
    made = app.consumer
    assert isinstance(made, GaplessCommitConsumer)
    yield made
    made._thread.thread_loop.close()  # the consumer's thread made a loop of its own


def _ack(consumer: GaplessCommitConsumer, *offsets: int) -> None:
    consumer._acked[EV0].extend(offsets)
    consumer._acked_index[EV0].update(offsets)


def test_a_skipped_record_right_after_the_committed_offset_holds_the_commit(consumer: GaplessCommitConsumer) -> None:
    # faust-streaming alone would commit 8 here and lose offset 5.
    consumer._committed_offset[EV0] = 5
    _ack(consumer, 6, 7)
    assert consumer._new_offset(EV0) is None
    _ack(consumer, 5)  # the stall repair reads it again
    assert consumer._new_offset(EV0) == 8


def test_before_the_first_commit_the_log_start_is_the_floor(consumer: GaplessCommitConsumer) -> None:
    # faust-streaming alone checks nothing before a partition's first commit: it would commit 3.
    consumer.raise_floor(EV0, 0)  # learnt after the seek to committed offsets: the log starts at 0
    _ack(consumer, 1, 2)
    assert consumer._new_offset(EV0) is None
    _ack(consumer, 0)
    assert consumer._new_offset(EV0) == 3


def test_nothing_is_committed_until_the_resume_point_is_known(consumer: GaplessCommitConsumer) -> None:
    _ack(consumer, 1, 2)
    assert consumer._new_offset(EV0) is None  # no commit and no floor yet
    consumer.raise_floor(EV0, 1)
    consumer.raise_floor(EV0, 0)  # floors only rise
    assert consumer._new_offset(EV0) == 3


def test_offsets_the_log_does_not_hold_do_not_hold_the_commit(consumer: GaplessCommitConsumer) -> None:
    consumer._committed_offset[EV0] = 5
    consumer._gap[EV0].addi(5, 7)  # e.g. transaction markers, recorded by Faust as a gap
    _ack(consumer, 7, 8)
    assert consumer._new_offset(EV0) == 9


def test_a_commit_below_the_floor_resumes_at_the_floor(consumer: GaplessCommitConsumer) -> None:
    # Retention removed offsets 0-99: the group resumed at the log's start.
    consumer.raise_floor(EV0, 100)
    _ack(consumer, 100, 101)
    assert consumer._new_offset(EV0) == 102


def test_consecutive_acknowledgements_commit_as_before(consumer: GaplessCommitConsumer) -> None:
    consumer._committed_offset[EV0] = 3
    _ack(consumer, 3, 4, 5, 9)
    assert consumer._new_offset(EV0) == 6


def test_a_record_skipped_behind_processed_ones_is_reported_once_for_reading_again(
    consumer: GaplessCommitConsumer,
) -> None:
    consumer._committed_offset[EV0] = 5
    _ack(consumer, 6, 7)
    assert consumer._new_offset(EV0) is None
    assert consumer.skipped(older_than_s=3600) == {}  # not held long enough yet
    assert consumer.skipped(older_than_s=0) == {EV0: 5}
    assert consumer._new_offset(EV0) is None
    assert consumer.skipped(older_than_s=0) == {}  # once: the stall repair is the fallback
    _ack(consumer, 5)
    assert consumer._new_offset(EV0) == 8
    consumer._committed_offset[EV0] = 8  # what Faust records after committing
    _ack(consumer, 9)  # a new hold, at offset 8
    assert consumer._new_offset(EV0) is None
    assert consumer.skipped(older_than_s=0) == {EV0: 8}


async def test_revoked_partitions_forget_their_floors_and_holds(consumer: GaplessCommitConsumer) -> None:
    consumer.raise_floor(EV0, 3)
    _ack(consumer, 4)
    assert consumer._new_offset(EV0) is None
    await consumer.on_partitions_revoked({EV0})
    assert consumer.skipped(older_than_s=0) == {}
    _ack(consumer, 4)
    assert consumer._new_offset(EV0) is None  # no floor and no commit: wait for the resume point
