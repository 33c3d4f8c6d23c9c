"""Cohort rows do not grow forever: a cohort closes by the channel stage's watermark, its row
leaves the table, its last wa.funnel record stays, and what still arrives for it is counted."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from schemas.codec import codec
from streams.clock import now_ms
from streams.core.batches import RawRecord, decode_signals, plan_normalize
from streams.core.outputs import Source
from streams.domain.channel import ChannelState, Policy, apply_signals
from streams.domain.cohort_retention import MARGIN_MS, CohortRetention
from streams.domain.funnel import Cohort, CohortRow
from streams.funnel_stage import FunnelStage
from tests.channel_stage import vonage
from tests.fake_tables import FakeOutbox, FakeTable, fake_topology

HOUR = 3_600_000
DAY = 24 * HOUR
MONTH = 30 * DAY
RULE = CohortRetention(cohort_ms=HOUR, unfinished_ms=MONTH)


def test_a_cohort_closes_an_unfinished_retention_and_a_day_after_its_end() -> None:
    start = 100 * HOUR
    assert RULE.margin_ms == MARGIN_MS == DAY
    assert RULE.closes_at(start) == start + HOUR + MONTH + DAY
    assert not RULE.closed(start, start + HOUR + MONTH + DAY - 1)
    assert RULE.closed(start, start + HOUR + MONTH + DAY)
    # With a retention shorter than a day (tests, small setups), the margin is the retention.
    assert CohortRetention(cohort_ms=60_000, unfinished_ms=5_000).closes_at(0) == 70_000


@given(st.integers(0, 10**6), st.integers(-(10**13), 10**13), st.integers(1, 10**8), st.integers(1, 10**10))
def test_the_earliest_open_cohort_separates_closed_from_open_ones(
    index: int, watermark: int, cohort_ms: int, unfinished_ms: int
) -> None:
    rule = CohortRetention(cohort_ms=cohort_ms, unfinished_ms=unfinished_ms)
    start = index * cohort_ms
    assert rule.closed(start, watermark) == (start < rule.open_from(watermark))
    assert rule.open_from(watermark) % cohort_ms == 0


def test_deltas_of_closed_cohorts_are_split_off() -> None:
    watermark = 1_000 * HOUR
    old = (None, watermark - MONTH - DAY - HOUR, {"attempted": 1})
    recent = ("c1", watermark - MONTH, {"read": 1})
    assert RULE.split([old, recent], watermark) == ([recent], [old])


def test_a_report_stamped_months_ahead_closes_no_cohort() -> None:
    # The channel's watermark is bounded by receipt (streams/domain/clock.py), and so the close.
    received_s = 1_750_030_000
    ahead = vonage("m-ahead", "delivered", received_s + 90 * 86_400, received_s=received_s)
    plan = plan_normalize([RawRecord(b"r", ahead.to_avro(), Source("raw", 0, 0))], 1, at=now_ms())
    state = ChannelState("vonage", "main")
    for _, value in plan.signals:
        apply_signals(state, decode_signals(value)[2], Policy(), 0)
    assert state.watermark <= received_s * 1000 + 60_000
    assert RULE.open_from(state.watermark) == RULE.open_from(received_s * 1000 + 60_000)


# --- the channel agent's cohort stage --------------------------------------------------------


class Outbox(FakeOutbox):
    def __init__(self) -> None:
        super().__init__()
        self.sent: list[tuple[str, bytes | None, bytes]] = []

    async def send(self, topic: str, items: Iterable[tuple[bytes | None, bytes]]) -> None:
        self.sent += [(topic, key, value) for key, value in items]


def stage() -> tuple[FunnelStage, FakeTable]:
    funnel = FunnelStage(fake_topology(cohort_s=3600, retention_unfinished_s=MONTH // 1000))
    table = FakeTable()
    funnel._writer = table  # type: ignore[assignment]
    return funnel, table


async def batch(
    funnel: FunnelStage, offset: int, deltas: list[tuple[str | None, int, dict[str, int]]], watermark: int
) -> tuple[int, int, Outbox]:
    """One batch of the channel agent for vonage:main (partition 0): (deltas not folded, rows deleted)."""
    outbox = Outbox()
    late = funnel.fold(0, offset, provider="vonage", channel="main", deltas=deltas, watermark=watermark)
    funnel.watch(0, "vonage", "main", watermark)
    deleted = await funnel.flush(outbox)
    return late, deleted, outbox


def published(outbox: Outbox) -> dict[str, dict[str, Any]]:
    funnel_codec = codec("cohort_funnel")
    return {key.decode(): funnel_codec.decode(value) for topic, key, value in outbox.sent if key is not None}


async def test_a_closed_cohorts_row_leaves_the_table_and_its_last_record_stays_published() -> None:
    funnel, table = stage()
    cohort = Cohort("vonage", "main", None, 0)
    campaign = Cohort("vonage", "main", "c1", 0)
    later = Cohort("vonage", "main", None, MONTH)
    deltas = [(None, 0, {"attempted": 2, "delivered": 2}), ("c1", 0, {"attempted": 1, "delivered": 1})]
    late, deleted, outbox = await batch(funnel, 1, deltas, watermark=HOUR)
    assert (late, deleted) == (0, 0)
    assert published(outbox)[cohort.key]["attempted"] == 2
    assert set(table.data[0]) == {cohort.key.encode(), campaign.key.encode()}

    # The watermark passes the close of the first cohorts, in the batch that opens a later one.
    late, deleted, outbox = await batch(
        funnel, 2, [(None, MONTH, {"attempted": 1, "delivered": 1})], watermark=RULE.closes_at(0)
    )
    assert (late, deleted) == (0, 2)
    assert set(table.data[0]) == {later.key.encode()}
    assert (0, cohort.key.encode(), None) in table.changelog  # a tombstone in the table's changelog
    assert set(published(outbox)) == {later.key}  # no tombstone, no record: wa.funnel keeps the last one
    assert all(value is not None for _, _, value in outbox.sent)

    # A delta for the closed cohort is not folded into a new row (which would publish a record
    # with only its counts over the cohort's last one): it is returned, to be counted.
    late, deleted, outbox = await batch(
        funnel, 3, [(None, 0, {"delivered": -1, "read": 1})], watermark=RULE.closes_at(0) + HOUR
    )
    assert (late, deleted) == (1, 0)
    assert published(outbox) == {}
    assert set(table.data[0]) == {later.key.encode()}


async def test_a_channels_rows_are_swept_once_per_bound_and_again_after_a_restart() -> None:
    funnel, table = stage()
    await batch(funnel, 1, [(None, 0, {"attempted": 1})], watermark=HOUR)
    scans = 0
    items = table.items

    def counted(partition: int) -> list[tuple[bytes, bytes]]:
        nonlocal scans
        scans += 1
        return items(partition)

    table.items = counted  # type: ignore[method-assign]
    # Within one cohort length of watermark the bound does not move: no scan.
    await batch(funnel, 2, [], watermark=HOUR + 1)
    await batch(funnel, 3, [], watermark=2 * HOUR - 1)
    assert scans == 0
    await batch(funnel, 4, [], watermark=RULE.closes_at(0))
    assert scans == 1
    assert table.data[0] == {}

    # A restart: the stage forgets its sweeps, the table is what the changelog restored.
    restarted, _ = stage()
    restarted._writer = table  # type: ignore[assignment]
    table.data[0] = {b"vonage:main@0": CohortRow(Cohort("vonage", "main", None, 0)).to_bytes()}
    _, deleted, _ = await batch(restarted, 5, [], watermark=RULE.closes_at(0))
    assert deleted == 1
