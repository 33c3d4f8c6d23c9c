"""The cohort table's I/O: the channel agent folds funnel deltas here and publishes the upserts.

Funnel deltas travel on wa.channel.signals, keyed by channel, so all of a channel's deltas
arrive in order in one partition, consumed by one channel agent. Its cohort rows are stored in
that same partition of the cohort table (whatever their own key hashes to), so the worker that
owns a channel's signals owns all its cohorts, and answers GET /funnel for it. Each row
remembers the offset of the last signals record folded into it: a batch read again after a
restart (its rows stored, its offsets not yet committed) is not counted twice.

Cohorts close by the channel's watermark (streams/domain/cohort_retention.py): deltas of a
closed cohort are not folded (the agent counts them as too late), and once a batch has moved a
channel's watermark past a cohort's close, its row is deleted from the table (a tombstone in the
changelog); its last record stays on the compacted wa.funnel.
"""

from __future__ import annotations

from collections.abc import Awaitable, Iterable, Mapping
from typing import Protocol

from schemas.codec import codec
from streams.domain.cohort_retention import CohortRetention
from streams.domain.funnel import CohortRow, fold
from streams.faust_ext.table_writes import TableWriter
from streams.topology import Topology


class Outbox(Protocol):
    """What the stage needs of the agent's outbox (streams/agents.py)."""

    def add(self, delivery: Awaitable[object]) -> None: ...

    async def send(self, topic: str, items: Iterable[tuple[bytes | None, bytes]]) -> None: ...


class FunnelStage:
    """One channel agent's cohort rows: folded per record, stored and published per batch."""

    def __init__(self, t: Topology) -> None:
        self._t = t
        self._cohort_ms = t.settings.cohort_s * 1000
        self._codec = codec("cohort_funnel")
        self.retention = CohortRetention(self._cohort_ms, t.settings.retention_unfinished_s * 1000)
        self._writer: TableWriter | None = None
        self._batch: dict[int, dict[str, CohortRow]] = {}
        # The watermark of each channel the batch saw, and the bound each channel's rows were
        # last swept to (in memory: after a restart each channel is swept once again).
        self._watermarks: dict[tuple[int, str, str], int] = {}
        self._swept: dict[tuple[str, str], int] = {}

    @property
    def writer(self) -> TableWriter:
        # The producer exists once the app has started: make the writer at first use.
        if self._writer is None:
            self._writer = TableWriter(self._t.app, self._t.cohorts)
        return self._writer

    def fold(
        self,
        partition: int,
        offset: int,
        *,
        provider: str,
        channel: str,
        deltas: Iterable[tuple[str | None, int, Mapping[str, int]]],
        watermark: int,
    ) -> int:
        """Fold one signals record's deltas into this batch's rows of its partition, those of
        cohorts still open at the channel's `watermark`; returns how many deltas were for closed
        cohorts (not folded: the caller counts them as too late)."""
        kept, late = self.retention.split(deltas, watermark)
        if kept:
            rows = self._batch.setdefault(partition, {})

            def load(key: str) -> CohortRow | None:
                value = self.writer.get(partition, key.encode())
                return CohortRow.from_bytes(value) if value is not None else None

            fold(rows, load, provider=provider, channel=channel, deltas=kept, offset=offset)
        return len(late)

    def watch(self, partition: int, provider: str, channel: str, watermark: int) -> None:
        """Note a channel's watermark after this batch: `flush` closes the cohorts it passed."""
        self._watermarks[(partition, provider, channel)] = watermark

    async def flush(self, outbox: Outbox) -> int:
        """Publish the batch's touched cohorts and store their rows, then delete the rows of the
        cohorts the batch's watermarks closed (deliveries in the outbox); returns how many rows
        were deleted."""
        batch, self._batch = self._batch, {}
        records: list[tuple[bytes | None, bytes]] = []
        for partition, rows in batch.items():
            for key, row in rows.items():
                records.append((key.encode(), self._codec.encode(row.publish(self._cohort_ms))))
                outbox.add(await self.writer.set(partition, key.encode(), row.to_bytes()))
        await outbox.send(self._t.settings.topics.funnel, records)
        return await self._close(outbox)

    async def _close(self, outbox: Outbox) -> int:
        """Delete the rows of closed cohorts of every channel whose bound moved (one scan of the
        channel's rows per cohort length of its watermark, and once after a start)."""
        watermarks, self._watermarks = self._watermarks, {}
        deleted = 0
        for (partition, provider, channel), watermark in watermarks.items():
            bound = self.retention.open_from(watermark)
            swept = self._swept.get((provider, channel))
            if swept is not None and bound <= swept:
                continue
            for row in channel_rows(self.writer, partition, provider, channel):
                if row.cohort.start < bound:
                    outbox.add(await self.writer.delete(partition, row.cohort.key.encode()))
                    deleted += 1
            self._swept[(provider, channel)] = bound
        return deleted

    async def persisted(self) -> None:
        """Once the batch's deliveries are acknowledged."""
        if self._writer is not None:
            await self._writer.persisted()


def channel_rows(writer: TableWriter, partition: int, provider: str, channel: str) -> list[CohortRow]:
    """Every cohort row of one channel (both scopes) in the partition holding them."""
    prefix = f"{provider}:{channel}".encode()
    rows = []
    for key, value in writer.items(partition):
        if key.startswith(prefix) and key[len(prefix) : len(prefix) + 1] in {b"@", b"#"}:
            row = CohortRow.from_bytes(value)
            if (row.cohort.provider, row.cohort.channel) == (provider, channel):
                rows.append(row)
    return rows
