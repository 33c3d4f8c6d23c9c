"""The local spool: where an acknowledged webhook waits while Kafka is unreachable.

Layout: a slot directory (one per receiver process, held with an exclusive `flock`) with
append-only segment files `<seq>.seg` and a `cursor` file. A record is

    u32 payload length | u32 CRC-32 of the payload | payload
    payload = u64 appended_at ms | u16 topic length | u32 key length | topic | key | value

Appends are group-committed: every request that arrives while an fsync is running waits for
the next one, so one fsync makes a whole batch durable and the caller answers 2xx only after
it. The drainer reads from the cursor, and the cursor moves (and fully read segments are
deleted) only after Kafka acknowledged what it read. On open, each segment is scanned: a torn
or corrupt tail (a crash mid-write) fails its CRC and is truncated away; it was never
acknowledged, because the fsync that would have covered it had not returned.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import fcntl
import logging
import os
import struct
import time
import zlib
from collections.abc import Callable, Sequence
from pathlib import Path

from schemas.errors import StatusflowError

log = logging.getLogger(__name__)

HEADER = struct.Struct(">II")
META = struct.Struct(">QHI")
MAX_SLOTS = 64
READ_CHUNK = 4 * 1024 * 1024
CommitHook = Callable[[int, int, float], None]  # records, bytes, seconds of write + fsync


class SpoolError(StatusflowError):
    """The spool cannot take a record: the caller must refuse the webhook (503)."""

    retriable = True


class SpoolFull(SpoolError):
    """The spool holds its configured maximum."""


class SpoolUnavailable(SpoolError):
    """The spool cannot be written (disk error, closed, or no free slot)."""


@dataclasses.dataclass(frozen=True, slots=True, order=True)
class Position:
    """A place in the spool: segment number and byte offset."""

    segment: int
    offset: int


@dataclasses.dataclass(frozen=True, slots=True)
class SpooledRecord:
    """One record read back from the spool, with where it ends (what to acknowledge)."""

    topic: str
    key: bytes
    value: bytes
    appended_at_ms: int
    end: Position
    size: int


def encode_record(topic: str, key: bytes, value: bytes, appended_at_ms: int) -> bytes:
    """The bytes of one record, header included."""
    raw_topic = topic.encode("utf-8")
    payload = META.pack(appended_at_ms, len(raw_topic), len(key)) + raw_topic + key + value
    return HEADER.pack(len(payload), zlib.crc32(payload)) + payload


def decode_records(data: bytes, segment: int, base: int) -> tuple[list[SpooledRecord], int]:
    """Records in `data` (read at offset `base` of `segment`) up to the first incomplete or corrupt one.

    Returns the records and how many bytes of `data` they cover.
    """
    records: list[SpooledRecord] = []
    offset = 0
    while offset + HEADER.size <= len(data):
        length, crc = HEADER.unpack_from(data, offset)
        start, end = offset + HEADER.size, offset + HEADER.size + length
        if length < META.size or end > len(data):
            break
        payload = data[start:end]
        if zlib.crc32(payload) != crc:
            break
        appended_at, topic_len, key_len = META.unpack_from(payload)
        body = META.size
        topic = payload[body : body + topic_len].decode("utf-8")
        key = payload[body + topic_len : body + topic_len + key_len]
        value = payload[body + topic_len + key_len :]
        records.append(SpooledRecord(topic, key, value, appended_at, Position(segment, base + end), end - offset))
        offset = end
    return records, offset


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


class Spool:
    """An append-only, group-committed, bounded local log of records waiting for Kafka."""

    def __init__(self, directory: Path, lock_fd: int, *, max_bytes: int, segment_bytes: int) -> None:
        self.directory = directory
        self._lock_fd = lock_fd
        self._max_bytes = max_bytes
        self._segment_bytes = segment_bytes
        self._sizes: dict[int, int] = {}  # durable size of each segment, in order
        self._cursor = Position(0, 0)
        self._active = 0
        self._active_fd = -1
        self.pending_records = 0
        self.pending_bytes = 0
        self.total_bytes = 0
        self.oldest_ms: int | None = None
        self.healthy = True
        self.full = False
        self.on_commit: CommitHook | None = None
        self._queue: list[tuple[bytes, asyncio.Future[None]]] = []
        self._queued_bytes = 0
        self._flusher: asyncio.Task[None] | None = None
        self._io_lock = asyncio.Lock()
        self._nonempty = asyncio.Event()
        self._closed = False

    # ------------------------------------------------------------------ opening

    @classmethod
    async def open(cls, root: Path, *, max_bytes: int, segment_bytes: int) -> Spool:
        """Take the first free slot under `root`, recover what a crash left, open a fresh segment."""
        return await asyncio.to_thread(cls._open_sync, root, max_bytes, segment_bytes)

    @classmethod
    def _open_sync(cls, root: Path, max_bytes: int, segment_bytes: int) -> Spool:
        try:
            root.mkdir(parents=True, exist_ok=True)
            for slot in range(MAX_SLOTS):
                directory = root / f"slot-{slot}"
                directory.mkdir(exist_ok=True)
                fd = os.open(directory / "lock", os.O_RDWR | os.O_CREAT, 0o600)
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    os.close(fd)
                    continue  # another live receiver process owns this slot
                spool = cls(directory, fd, max_bytes=max_bytes, segment_bytes=segment_bytes)
                spool._recover()
                return spool
        except OSError as exc:
            msg = f"spool under {root} cannot be opened: {exc}"
            raise SpoolUnavailable(msg) from exc
        msg = f"all {MAX_SLOTS} spool slots under {root} are held by live processes"
        raise SpoolUnavailable(msg)

    def _path(self, segment: int) -> Path:
        return self.directory / f"{segment:012d}.seg"

    def _read_cursor(self) -> Position | None:
        try:
            segment, offset = (self.directory / "cursor").read_text(encoding="ascii").split()
            return Position(int(segment), int(offset))
        except (OSError, ValueError):
            return None

    def _recover(self) -> None:
        segments = sorted(int(p.stem) for p in self.directory.glob("*.seg") if p.stem.isdigit())
        cursor = self._read_cursor() or Position(segments[0] if segments else 0, 0)
        for segment in segments:
            path = self._path(segment)
            if segment < cursor.segment:
                path.unlink()  # fully drained before the crash
                continue
            data = path.read_bytes()
            records, valid = decode_records(data, segment, 0)
            if valid < len(data):
                log.warning(
                    "spool %s: dropping %s bytes of torn or corrupt tail after %s records (never acknowledged)",
                    path,
                    len(data) - valid,
                    len(records),
                )
                with path.open("r+b") as handle:
                    handle.truncate(valid)
                    os.fsync(handle.fileno())
            self._sizes[segment] = valid
            self.total_bytes += valid
            start = cursor.offset if segment == cursor.segment else 0
            waiting = [r for r in records if r.end.offset > start]
            self.pending_records += len(waiting)
            self.pending_bytes += sum(r.size for r in waiting)
            if waiting and self.oldest_ms is None:
                self.oldest_ms = waiting[0].appended_at_ms
        kept = sorted(self._sizes)
        self._cursor = cursor if kept and cursor.segment in self._sizes else Position(kept[0] if kept else 0, 0)
        if self._cursor.offset > self._sizes.get(self._cursor.segment, 0):
            self._cursor = Position(self._cursor.segment, 0)
        self._open_segment((kept[-1] if kept else 0) + 1)
        if not kept:
            self._cursor = Position(self._active, 0)
        if self.pending_records:
            log.warning("spool %s holds %s records from before; draining them", self.directory, self.pending_records)
            self._nonempty.set()

    def _open_segment(self, segment: int) -> None:
        fd = os.open(self._path(segment), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        _fsync_dir(self.directory)  # the new file's name is durable before any record in it is acknowledged
        if self._active_fd >= 0:
            os.close(self._active_fd)
        self._active, self._active_fd = segment, fd
        self._sizes.setdefault(segment, 0)

    # ------------------------------------------------------------------ appending

    @property
    def usable(self) -> bool:
        """Open, the last write succeeded, and the last record offered fitted."""
        return not self._closed and self.healthy and not self.full

    async def append(self, topic: str, key: bytes, value: bytes) -> None:
        """Return once the record is on disk (fsync); SpoolFull or SpoolUnavailable otherwise."""
        if self._closed:
            raise SpoolUnavailable("the spool is closed")
        record = encode_record(topic, key, value, int(time.time() * 1000))
        if self.total_bytes + self._queued_bytes + len(record) > self._max_bytes:
            self.full = True
            msg = f"spool holds {self.total_bytes} of {self._max_bytes} bytes"
            raise SpoolFull(msg)
        self.full = False
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._queue.append((record, done))
        self._queued_bytes += len(record)
        if self._flusher is None:
            self._flusher = asyncio.create_task(self._flush(), name="spool-flush")
        await done

    async def _flush(self) -> None:
        try:
            while self._queue:
                # Everything queued while the previous fsync ran shares this one (group commit).
                batch, self._queue = self._queue, []
                data = b"".join(record for record, _ in batch)
                self._queued_bytes -= len(data)
                async with self._io_lock:
                    error = await self._commit(data, len(batch))
                for _, done in batch:
                    if done.done():
                        continue
                    if error is None:
                        done.set_result(None)
                    else:
                        done.set_exception(error)
        finally:
            self._flusher = None

    async def _commit(self, data: bytes, count: int) -> SpoolError | None:
        started = time.perf_counter()
        try:
            size = self._sizes[self._active]
            if size and size + len(data) > self._segment_bytes:
                await asyncio.to_thread(self._open_segment, self._active + 1)
            start = self._sizes[self._active]
            await asyncio.to_thread(self._write_sync, self._active_fd, start, data)
        except OSError as exc:
            self.healthy = False
            log.error("spool %s write failed: %s", self.directory, exc)  # noqa: TRY400 - the errno says it all
            return SpoolUnavailable(f"spool write failed: {exc.strerror or exc}")
        self.healthy = True
        if self.pending_records == 0:
            self.oldest_ms = struct.unpack_from(">Q", data, HEADER.size)[0]
        self._sizes[self._active] = start + len(data)
        self.total_bytes += len(data)
        self.pending_records += count
        self.pending_bytes += len(data)
        self._nonempty.set()
        if self.on_commit is not None:
            self.on_commit(count, len(data), time.perf_counter() - started)
        return None

    @staticmethod
    def _write_sync(fd: int, start: int, data: bytes) -> None:
        try:
            _write_all(fd, data)
            os.fdatasync(fd)
        except OSError:
            # Leave no half-written batch behind a later one: it was never acknowledged.
            with contextlib.suppress(OSError):
                os.ftruncate(fd, start)
            raise

    # ------------------------------------------------------------------ draining

    async def wait_nonempty(self) -> None:
        """Until at least one durable record waits for Kafka."""
        await self._nonempty.wait()

    async def read_batch(self, max_records: int) -> list[SpooledRecord]:
        """The oldest unacknowledged records, in append order (at most `max_records`)."""
        sizes = dict(self._sizes)
        return await asyncio.to_thread(self._read_sync, self._cursor, sizes, max_records)

    def _read_sync(self, cursor: Position, sizes: dict[int, int], max_records: int) -> list[SpooledRecord]:
        out: list[SpooledRecord] = []
        for segment in sorted(s for s in sizes if s >= cursor.segment):
            offset = cursor.offset if segment == cursor.segment else 0
            end = sizes[segment]
            with self._path(segment).open("rb") as handle:
                while offset < end and len(out) < max_records:
                    handle.seek(offset)
                    data = handle.read(min(end - offset, READ_CHUNK))
                    records, used = decode_records(data, segment, offset)
                    if not records:
                        if used == 0 and end - offset > READ_CHUNK:
                            data = handle.read(end - offset)  # one record larger than a chunk
                            records, used = decode_records(data, segment, offset)
                        if not records:
                            msg = f"spool {self._path(segment)} is corrupt at offset {offset}"
                            raise SpoolUnavailable(msg)
                    out.extend(records[: max_records - len(out)])
                    offset = out[-1].end.offset
            if len(out) >= max_records:
                break
        return out

    async def ack(self, records: Sequence[SpooledRecord]) -> None:
        """Kafka acknowledged `records` (a prefix of what read_batch returned): forget them."""
        if not records:
            return
        self.full = False
        self.pending_records -= len(records)
        self.pending_bytes -= sum(r.size for r in records)
        cursor = records[-1].end
        async with self._io_lock:
            for segment in sorted(self._sizes):
                finished = segment < cursor.segment or (
                    segment == cursor.segment and cursor.offset >= self._sizes[segment] and segment != self._active
                )
                if not finished:
                    break
                await asyncio.to_thread(self._path(segment).unlink)
                self.total_bytes -= self._sizes.pop(segment)
                if segment == cursor.segment:
                    cursor = Position(min(self._sizes), 0)
            if cursor.segment == self._active and cursor.offset == self._sizes[self._active] and not self._queue:
                # Everything is drained: start afresh so the space is given back now.
                old = self._active
                await asyncio.to_thread(self._open_segment, old + 1)
                await asyncio.to_thread(self._path(old).unlink)
                self.total_bytes -= self._sizes.pop(old)
                cursor = Position(self._active, 0)
            self._cursor = cursor
            await asyncio.to_thread(self._write_cursor, cursor)
        if self.pending_records == 0:
            self.oldest_ms = None
            self._nonempty.clear()
        else:
            self.oldest_ms = await self._peek_appended_at()

    def _write_cursor(self, cursor: Position) -> None:
        # Not fsynced: a stale cursor after a crash only re-sends records (at least once), never loses one.
        tmp = self.directory / "cursor.tmp"
        tmp.write_text(f"{cursor.segment} {cursor.offset}\n", encoding="ascii")
        tmp.replace(self.directory / "cursor")

    async def _peek_appended_at(self) -> int | None:
        batch = await self.read_batch(1)
        return batch[0].appended_at_ms if batch else None

    # ------------------------------------------------------------------ closing

    async def close(self) -> None:
        """Finish pending appends, then release the files and the slot."""
        self._closed = True
        if self._flusher is not None:
            await self._flusher
        async with self._io_lock:
            if self._active_fd >= 0:
                os.close(self._active_fd)
                self._active_fd = -1
            os.close(self._lock_fd)
