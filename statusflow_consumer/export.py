"""A restartable sink of wa.status.changes, wa.metrics and wa.funnel into date-partitioned Parquet files.

Neither loss nor duplicates across crashes and reruns:

* a file is written to a temporary name, fsynced, renamed into place and its directory
  fsynced; only then is the offset after it committed to the consumer group;
* a file holds one contiguous offset range of one partition and is named by it
  (`statusflow_consumer.parquet`), so the files on disk are themselves the checkpoint: at start
  each partition resumes after the highest offset on disk or the group's commit, whichever is
  later. A crash after the rename but before the commit therefore re-reads nothing that was
  written, and a crash before the rename leaves only a temporary file that readers ignore
  (`*.parquet` globs) and the next start removes.

One export process owns an output directory (a lock file says so) and reads every partition
of its topics itself (manual assignment under the group id that keeps its commits).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import fcntl
import logging
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition

from schemas.errors import MissingExtra, StatusflowError
from statusflow_consumer import Decoded, decode_message, partitions_of
from statusflow_consumer.parquet import ROWS, PartFile, event_date, last_exported, to_table

try:
    import pyarrow.parquet as pq
except ModuleNotFoundError as exc:
    raise MissingExtra("pyarrow", "analytics", "The Parquet export (statusflow_consumer.export)") from exc

log = logging.getLogger(__name__)

MAX_BATCH_RECORDS = 500_000


class ExportError(StatusflowError):
    """The export cannot go on (output directory taken, foreign record on a topic)."""


@dataclasses.dataclass(frozen=True, slots=True)
class ExportSettings:
    """What to export, where, and how large a file may get."""

    bootstrap_servers: str
    topics: tuple[str, ...]
    out: Path
    group_id: str = "statusflow-export-parquet"
    batch_records: int = 50_000
    flush_interval_s: float = 30.0
    until_end: bool = False  # stop once caught up with the end offsets seen at start

    def __post_init__(self) -> None:
        if not 0 < self.batch_records <= MAX_BATCH_RECORDS:
            msg = f"batch_records must be in (0, {MAX_BATCH_RECORDS}]"
            raise ExportError(msg)


@dataclasses.dataclass
class ExportStats:
    """What a run wrote."""

    records: int = 0
    files: int = 0


@dataclasses.dataclass
class _Buffer:
    """Records of one partition not yet written: one date, contiguous offsets."""

    date: str
    first: int
    last: int
    schema: str
    rows: list[dict[str, Any]]
    since: float


@contextlib.contextmanager
def _exclusive(out: Path) -> Iterator[None]:
    out.mkdir(parents=True, exist_ok=True)
    with (out / ".export.lock").open("w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            msg = f"{out} is being written by another export process"
            raise ExportError(msg) from exc
        yield


def write_part(out: Path, part: PartFile, schema: str, rows: list[dict[str, Any]]) -> Path:
    """Write one file durably: temporary name, fsync, rename, fsync of the directory."""
    final = part.path(out)
    final.parent.mkdir(parents=True, exist_ok=True)
    temporary = final.with_name(f".{final.name}.tmp")
    pq.write_table(to_table(schema, rows), temporary, compression="zstd")
    with temporary.open("rb") as handle:
        os.fsync(handle.fileno())
    temporary.replace(final)
    directory = os.open(final.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)
    return final


def _remove_temporaries(out: Path, topics: tuple[str, ...]) -> None:
    for topic in topics:
        for stale in (out / f"topic={topic}").glob("date=*/.part-*.parquet.tmp"):
            stale.unlink(missing_ok=True)


class ParquetExport:
    """The sink's loop: read, buffer per partition, write, commit."""

    def __init__(self, settings: ExportSettings, on_progress: Callable[[ExportStats], None] | None = None) -> None:
        self.settings = settings
        self.stats = ExportStats()
        self._buffers: dict[TopicPartition, _Buffer] = {}
        self._on_progress = on_progress or (lambda stats: None)
        self._stopping = asyncio.Event()

    def stop(self) -> None:
        """Finish the current poll, write what is buffered, commit and return."""
        self._stopping.set()

    async def run(self) -> ExportStats:
        """Export until stopped (or caught up, with `until_end`)."""
        s = self.settings
        with _exclusive(s.out):
            _remove_temporaries(s.out, s.topics)
            consumer = AIOKafkaConsumer(
                bootstrap_servers=s.bootstrap_servers,
                group_id=s.group_id,
                enable_auto_commit=False,
                auto_offset_reset="earliest",
                max_poll_records=min(s.batch_records, 10_000),
            )
            try:
                await consumer.start()
                await self._consume(consumer)
            finally:
                await consumer.stop()
        return self.stats

    async def _consume(self, consumer: AIOKafkaConsumer) -> None:
        s = self.settings
        partitions = await partitions_of(s.bootstrap_servers, list(s.topics))
        if len({tp.topic for tp in partitions}) != len(s.topics):
            missing = set(s.topics) - {tp.topic for tp in partitions}
            msg = f"topics not found: {', '.join(sorted(missing))} (run `statusflow topics`)"
            raise ExportError(msg)
        consumer.assign(partitions)
        for tp in partitions:
            await self._resume(consumer, tp)
        ends: dict[TopicPartition, int] = dict(await consumer.end_offsets(partitions)) if s.until_end else {}
        while not self._stopping.is_set():
            batches = await consumer.getmany(timeout_ms=500, max_records=s.batch_records)
            for tp, messages in batches.items():
                for message in messages:
                    await self._add(consumer, tp, message)
            now = time.monotonic()
            for tp in [tp for tp, b in self._buffers.items() if now - b.since >= s.flush_interval_s]:
                await self._flush(consumer, tp)
            if s.until_end and await self._caught_up(consumer, ends):
                break
        for tp in list(self._buffers):
            await self._flush(consumer, tp)

    async def _caught_up(self, consumer: AIOKafkaConsumer, ends: dict[TopicPartition, int]) -> bool:
        for tp, end in ends.items():
            if await consumer.position(tp) < end:
                return False
        return True

    async def _resume(self, consumer: AIOKafkaConsumer, tp: TopicPartition) -> None:
        """Start after what is on disk when the group's commit is behind it."""
        on_disk = last_exported(self.settings.out, tp.topic, tp.partition)
        committed = await consumer.committed(tp)
        if on_disk is not None and (committed is None or committed <= on_disk):
            log.info(
                "%s-%d resumes at %d from the files on disk (commit %s)", tp.topic, tp.partition, on_disk + 1, committed
            )
            consumer.seek(tp, on_disk + 1)

    async def _add(self, consumer: AIOKafkaConsumer, tp: TopicPartition, message: Any) -> None:
        item: Decoded | None = decode_message(message)
        if item is None:
            return
        if item.schema not in ROWS:
            msg = f"{tp.topic}-{tp.partition}@{message.offset} holds {item.schema}, which is not exported"
            raise ExportError(msg)
        date = event_date(item)
        buffer = self._buffers.get(tp)
        if buffer is not None and buffer.date != date:
            # One file, one date: a date change closes the range so that the name stays exact.
            await self._flush(consumer, tp)
            buffer = None
        if buffer is None:
            buffer = self._buffers[tp] = _Buffer(
                date, message.offset, message.offset, item.schema, [], time.monotonic()
            )
        buffer.rows.append(ROWS[item.schema](item))
        buffer.last = message.offset
        if len(buffer.rows) >= self.settings.batch_records:
            await self._flush(consumer, tp)

    async def _flush(self, consumer: AIOKafkaConsumer, tp: TopicPartition) -> None:
        buffer = self._buffers.pop(tp, None)
        if buffer is None:
            return
        part = PartFile(tp.topic, buffer.date, tp.partition, buffer.first, buffer.last)
        # pyarrow releases the GIL while encoding; a thread keeps the consumer's heartbeats going.
        path = await asyncio.to_thread(write_part, self.settings.out, part, buffer.schema, buffer.rows)
        await consumer.commit({tp: buffer.last + 1})
        self.stats.records += len(buffer.rows)
        self.stats.files += 1
        log.info(
            "wrote %s (%d rows), committed %s-%d@%d", path, len(buffer.rows), tp.topic, tp.partition, buffer.last + 1
        )
        self._on_progress(self.stats)
