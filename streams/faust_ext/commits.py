"""Offset commits that never pass a record the worker has not processed.

Faust commits, per partition, the end of the first run of consecutive acknowledged offsets.
faust-streaming 0.15 checks that this run starts right at the committed offset only loosely:
it lets one missing offset through (`min(acked) - committed > 1`, where `committed` is the
next offset to read), and none at all while the partition has no commit yet (or its commit
is 0). And records do go missing: when a recovery completes, Faust resumes the partitions,
seeks them to their committed offsets and only then resumes its flow control, and a record
fetched in between reaches a stream that skips it (the consumer's read position has moved on,
so it is not fetched again). That is usually the first record after the committed offset, and
Faust commits past it as soon as the next one is processed: lost for good, with no stall for
the worker's stall repair to see. It happened in the join-and-leave fault test (every message
of one bundle kept its state from before the bundle); with logging, in about every second run
of that scenario some partition (events or channel signals) skipped its first record.

The consumer also delivers fetched records to the streams faster (`_drain_messages`): Faust
delivers each record through `Service.wait_first`, which wraps the delivery and the flow's
suspension in two new tasks, so each record costs event-loop rounds; while the agents work
through a batch between rounds, a live stream of a few hundred records a second reached
them 1-3 s late (measured at `getmany`: records 1.7-2.8 s old, the agents idle half the
time). Here a record is delivered with one await of the conductor's callback (it only waits
when a stream's buffer is full); a fetch is left undelivered (and unread) when the flow is
suspended, as in a rebalance: Faust seeks to the committed offsets before it resumes.

Here a partition commits nothing while the record at its committed offset (or, before the
first commit, at the log's start) is unacknowledged, unless Faust recorded that offset as a
gap (an offset the log does not hold, such as a transaction marker). Records of a partition
are processed in order, so a missing record behind processed ones was skipped: the lag timer
(streams/lag.py, streams/faust_ext/stall_repair.py) reads the partition again from it once the
hold has lasted two commit intervals (`skipped`), and the stall repair
(streams/faust_ext/stalls.py) remains the fallback.

Corrects faust-streaming 0.15.3 (the release streams/faust_ext/faust_version.py requires):
`Consumer._new_offset` (reads `_acked`, `_gap`, `_committed_offset`), `Consumer._drain_messages`
and the aiokafka consumer thread's `_create_worker_consumer`. Upstream: the loose check of the
first acknowledged offset is faust-streaming issue #606 ("Wrong offset commit in case of gaps",
open; a fix is proposed in pull request #707); for the per-record cost of the delivery loop and
the fixed fetch settings, no upstream issue found. Why each exists: docs/architecture.md.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
import weakref
from collections.abc import Iterable, Set
from typing import Any, cast

from aiokafka.errors import KafkaError

# Before Faust's internals below: stops the worker on any faust-streaming but the release the
# repairs are written against (streams/faust_ext/faust_version.py). The package imports it first
# too (streams/faust_ext/__init__.py); this keeps the property for this module on its own.
from streams.faust_ext import faust_version  # noqa: F401

# isort: split
from faust.transport.consumer import CONSUMER_FETCHING
from faust.transport.drivers import TRANSPORTS
from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread
from faust.transport.drivers.aiokafka import Consumer as AIOKafkaConsumer
from faust.transport.drivers.aiokafka import Transport as AIOKafkaTransport
from faust.types import TP, AppT
from mode import ServiceT

log = logging.getLogger(__name__)

TRANSPORT_SCHEME = "statusflow-kafka"


def first_missing(floor: int, head: int, gaps: Iterable[tuple[int, int]]) -> int | None:
    """The first offset in [floor, head) that is neither acknowledged nor a known gap.

    `floor` is the next offset the partition must commit, `head` the smallest acknowledged
    offset, `gaps` Faust's half-open ranges of offsets the log does not hold.
    """
    position = floor
    for begin, end in sorted(gaps):
        if position >= head:
            break
        if begin > position:
            return position
        position = max(position, end)
    return position if position < head else None


@dataclasses.dataclass(slots=True)
class Hold:
    """A partition's commits wait for the record at `offset` (since `since`, monotonic)."""

    offset: int
    since: float
    reread: bool = False


@dataclasses.dataclass(frozen=True)
class FetchBatching:
    """How long the broker may hold a fetch to gather more bytes (aiokafka's fetch_min/max_wait).

    Faust asks for fetch_min_bytes=1: under live traffic every fetch returns the one or two
    records produced since the last, so the consumer thread, its hand-over to the worker's loop
    and the broker all work per record. Waiting up to `max_wait_ms` for `min_bytes` makes each
    fetch carry a batch; a partition that is behind still fills a fetch at once.
    """

    min_bytes: int
    max_wait_ms: int


_FETCH_BATCHING: weakref.WeakKeyDictionary[AppT, FetchBatching] = weakref.WeakKeyDictionary()


def batch_fetches(app: AppT, batching: FetchBatching) -> None:
    """Fetch settings of `app`'s consumer (read when its consumer thread creates the client)."""
    _FETCH_BATCHING[app] = batching


class BatchingConsumerThread(AIOKafkaConsumerThread):
    """Faust's consumer thread whose aiokafka client fetches as `batch_fetches` said.

    faust-streaming 0.15.3 passes a fixed fetch_max_wait_ms=1500 and no fetch_min_bytes to
    AIOKafkaConsumer and has no setting for them; the client keeps both as attributes
    (`_fetch_min_bytes`, `_fetch_max_wait_ms`, aiokafka 0.14) read once, when it starts.
    """

    def _create_worker_consumer(self, transport: Any) -> Any:
        client = super()._create_worker_consumer(transport)
        batching = _FETCH_BATCHING.get(self.app)
        if batching is not None:
            client._fetch_min_bytes = batching.min_bytes
            client._fetch_max_wait_ms = batching.max_wait_ms
        return client


class GaplessCommitConsumer(AIOKafkaConsumer):
    """Faust's aiokafka consumer with a strict check of the first acknowledged offset."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Per assigned partition, a lower bound of where the group resumed: the log's start,
        # raised to the group's committed offset when the lag probe sees one. What matters is
        # a partition without a commit of its own, whose first commit Faust does not check.
        self._floors: dict[TP, int] = {}
        self._learning: asyncio.Task[None] | None = None
        # Partitions whose commits wait for a record: (its offset, since when, read again).
        self._held: dict[TP, Hold] = {}
        # Records processed per partition since the worker started (the stall repair's
        # evidence that a partition behind its end is moving, however slowly).
        self.processed: dict[TP, int] = {}

    def _new_consumer_thread(self) -> AIOKafkaConsumerThread:
        return BatchingConsumerThread(self, loop=self.loop, beacon=self.beacon)

    def ack(self, message: Any) -> bool:
        """Faust's acknowledgement of a processed record, counted per partition."""
        acked: bool = super().ack(message)
        if acked:
            tp = message.tp
            self.processed[tp] = self.processed.get(tp, 0) + 1
        return acked

    def raise_floor(self, tp: TP, offset: int) -> None:
        """`offset` is a lower bound of where the group resumed reading `tp`."""
        if offset > self._floors.get(tp, -1):
            self._floors[tp] = offset

    def _new_offset(self, tp: TP) -> int | None:
        acked = self._acked[tp]
        if acked:
            bounds = [o for o in (self._committed_offset[tp], self._floors.get(tp)) if o is not None]
            if not bounds:
                return None  # where the partition resumed is not known yet (milliseconds): wait
            gaps = ((interval.begin, interval.end) for interval in self._gap[tp])
            missing = first_missing(max(bounds), min(acked), gaps)
            if missing is not None:
                self._note_hold(tp, missing)
                return None  # the next record to commit is not processed: commit nothing
        self._held.pop(tp, None)
        offset: int | None = super()._new_offset(tp)
        return offset

    def _note_hold(self, tp: TP, missing: int) -> None:
        held = self._held.get(tp)
        if held is None or held.offset != missing:
            self._held[tp] = Hold(missing, time.monotonic())
            log.info("%s[%s]: offset %s not processed but later ones are: commits wait for it", *tp, missing)

    def skipped(self, older_than_s: float) -> dict[TP, int]:
        """Partitions whose commits have waited at least `older_than_s` for a record that was
        fetched and skipped (records of a partition are processed in order, so a missing one
        behind processed ones will not come by itself), each with that record's offset; each
        record once: if reading it again does not help, the stall repair still applies."""
        now = time.monotonic()
        due = {}
        for tp, held in self._held.items():
            if not held.reread and now - held.since >= older_than_s:
                held.reread = True
                due[tp] = held.offset
        return due

    async def _drain_messages(self, fetcher: ServiceT) -> None:
        """Faust's delivery loop (faust-streaming 0.15.3, Consumer._drain_messages) with one
        await per record instead of `wait_first` (see the module's docstring)."""
        suspended = self.suspend_flow.is_set
        consumer_should_stop = self._stopped.is_set
        fetcher_should_stop = cast(Any, fetcher)._stopped.is_set
        try:
            while not (consumer_should_stop() or fetcher_should_stop()):
                self.diag.set_flag(CONSUMER_FETCHING)
                records = self.getmany(timeout=1.0)
                await self.sleep(0)
                if self.should_stop:
                    break
                delivered = 0
                async for tp, message in records:
                    if suspended():
                        break  # the rest of this fetch is read again from the committed offset
                    await self._deliver(tp, message)
                    delivered += 1
                    if delivered % 200 == 0:
                        await asyncio.sleep(0)  # let the agents take what was delivered
                self.diag.unset_flag(CONSUMER_FETCHING)
        except self.consumer_stopped_errors:
            if self.transport.app.should_stop:
                log.info("broker stopped the consumer while the worker stops")
                return
            raise
        except asyncio.CancelledError:
            if self.transport.app.should_stop:
                return
            raise
        finally:
            self.diag.unset_flag(CONSUMER_FETCHING)

    async def _deliver(self, tp: TP, message: Any) -> None:
        """Hand one fetched record to the streams, as Faust does, unless it was delivered
        already (a record at or above the partition's read offset is new)."""
        offset = message.offset
        r_offset = self._read_offset[tp]
        if r_offset is not None and offset < r_offset:
            return
        if r_offset and offset - r_offset > 1 and self.app.topics.acks_enabled_for(message.topic):
            await self._add_gap(tp, r_offset + 1, offset)
        if self._commit_every is not None and self._n_acked >= self._commit_every:
            self._n_acked = 0
            await self.commit()
        await self.callback(message)
        self._read_offset[tp] = offset

    async def perform_seek(self) -> None:
        """Seek to the committed offsets (Faust); learn the log's start of partitions without a
        commit in the background: Faust resumes the streams right after this, and records
        fetched in the meantime are the ones its streams skip (see the module's docstring)."""
        await super().perform_seek()
        uncommitted = {
            tp
            for tp in self.assignment()
            if self.app.topics.acks_enabled_for(tp.topic) and self._committed_offset[tp] is None
        }
        if uncommitted:
            self._learning = asyncio.ensure_future(self._learn_starts(uncommitted))

    async def _learn_starts(self, tps: set[TP]) -> None:
        try:
            starts = await self.earliest_offsets(*tps)
        except (KafkaError, TimeoutError) as exc:
            # The lag probe sets them at its next measurement (streams/faust_ext/stall_repair.py).
            log.warning("log starts of %s partitions not known yet (%r)", len(tps), exc)
            return
        assigned = self.assignment()
        for tp, start in starts.items():
            if tp in assigned:
                self.raise_floor(tp, start or 0)

    async def on_stop(self) -> None:
        """Stop learning log starts, then stop as Faust does (its final commit is checked too)."""
        if self._learning is not None:
            self._learning.cancel()
        await super().on_stop()

    async def on_partitions_revoked(self, revoked: Set[TP]) -> None:
        """Forget the floors of revoked partitions (Faust forgets their commits here too)."""
        for tp in revoked:
            self._floors.pop(tp, None)
            self._held.pop(tp, None)
        await super().on_partitions_revoked(revoked)


class GaplessCommitTransport(AIOKafkaTransport):
    """Faust's aiokafka transport with the consumer above."""

    Consumer = GaplessCommitConsumer


def register() -> str:
    """Make the transport reachable as `<TRANSPORT_SCHEME>://` for Faust; returns that prefix."""
    TRANSPORTS.aliases[TRANSPORT_SCHEME] = f"{__name__}:GaplessCommitTransport"
    return f"{TRANSPORT_SCHEME}://"
