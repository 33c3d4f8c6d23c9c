"""The worker's stages: normalize (consumer loop), track and channel (Faust agents).

Agents stay thin: records come in batches (Faust's `take_events`: as many as have arrived,
up to `batch_max_records`, waiting at most `batch_within_s` for more), each batch goes through
the pure planning calls (streams/core/batches.py, streams/domain/channel.py) and the rest is I/O.
Faust acknowledges a record even when its agent raises, so nothing here may raise for bad
input: undecodable records go to the dead-letter topic with their reason.

Outputs of a whole batch are in flight at once and their delivery is awaited once, before the
batch's records are acknowledged (`take_events` acknowledges them when the loop asks for the
next batch): a committed offset never runs ahead of what it produced, and a live stream of
small records costs one broker round trip per batch, not one per record.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, cast

import mode
from faust.types import EventT, StreamT
from prometheus_client import CollectorRegistry, Counter

from schemas.codec import SchemaError, codec
from schemas.live_channels import LiveChannels
from streams.adapters.registry import Resolver
from streams.clock import now_ms
from streams.core.batches import (
    ChannelSignals,
    decode_signals,
    expiry_signals,
    plan_track,
    retire_bundles,
    stuck_signals,
)
from streams.core.outputs import Source, dead_letter_record
from streams.core.records import Bundle, bundle_parts_from_avro, is_legacy_state, state_from_bytes
from streams.core.tracker import expired_record
from streams.disk_deadlines import DiskDeadlines
from streams.domain.channel import ChannelState, apply_signals, from_bytes, to_bytes
from streams.domain.deadlines import DeadlineSet
from streams.domain.events import StatusEvent
from streams.domain.lattice import MessageState
from streams.domain.retention import FINISHED, Retention, RetentionIndex
from streams.domain.stuck import StuckIndex
from streams.faust_ext.table_writes import TableWriter
from streams.funnel_stage import FunnelStage
from streams.late import count_late, late_counter
from streams.message_ids import MessageIds
from streams.normalize_loop import NormalizeLoop
from streams.normalize_process import NormalizeProcess
from streams.stages import stage_functions
from streams.tenant_figures import TenantFigures
from streams.topology import Topology

log = logging.getLogger(__name__)


def _source(record: EventT[bytes]) -> Source:
    message = record.message
    return Source(topic=message.topic, partition=message.partition, offset=message.offset)


class Outbox:
    """Sends through the app's producer; `flush` waits for every delivery of the record."""

    def __init__(self, t: Topology) -> None:
        self._producer = t.app.producer
        self._pending: list[Awaitable[object]] = []

    async def send(self, topic: str, items: Iterable[tuple[bytes | None, bytes]]) -> None:
        """Enqueue records (this only waits when the producer's buffer is full)."""
        for key, value in items:
            self._pending.append(await self._producer.send(topic, key, value, None, None, None))

    def add(self, delivery: Awaitable[object]) -> None:
        """Track a delivery sent by other means (an explicit partition)."""
        self._pending.append(delivery)

    async def flush(self) -> None:
        """Wait for the broker to acknowledge everything sent since the last flush."""
        pending, self._pending = self._pending, []
        await asyncio.gather(*pending)


async def _dead_letter(t: Topology, outbox: Outbox, record: EventT[bytes], reason: str) -> None:
    source = _source(record)
    key = record.message.key or b""
    log.warning("dead-lettering %s[%s]@%s: %s", source.topic, source.partition, source.offset, reason)
    value = dead_letter_record(
        key.decode("utf-8", "replace"),
        provider="unknown",
        channel="unknown",
        reason=reason,
        source=source,
        value=record.value,
        at=now_ms(),
    )
    await outbox.send(t.dlq.get_topic_name(), [(key, value)])


def register_agents(
    t: Topology,
    accept: Callable[[StatusEvent], bool],
    resolve: Resolver,
    registry: CollectorRegistry | None = None,
    tenants: TenantFigures | None = None,
    *,
    channels: LiveChannels | None = None,
) -> None:
    """Attach the stages; `accept` is the channels' status filter, `resolve` picks adapters,
    `registry` is where the stages' own counters go (the worker's GET /metrics), `tenants` the
    per-tenant ones; `channels`, reloaded while the worker runs (streams/reload.py), gives the
    normalize stage each configuration applied."""

    def downstream_ready() -> bool:
        return not (t.app.rebalancing or t.app.in_recovery)

    @t.app.service
    class NormalizeService(mode.Service):
        """Runs the normalize loop for as long as the worker runs: in a child process (a second
        core) or, with STATUSFLOW_NORMALIZE_PROCESS=false, in this event loop."""

        @mode.Service.task
        async def _normalize(self) -> None:
            # What is in force now, and every reload from now on (no await in between: none is missed).
            stages = stage_functions(channels.current) if channels is not None else (accept, resolve)
            if not t.settings.normalize_process:
                stage = NormalizeLoop(t.settings, *stages, downstream_ready=downstream_ready)
                if channels is not None:
                    channels.subscribe(lambda config: stage.use(*stage_functions(config)))
                await stage.run()
                return
            child = NormalizeProcess(t.settings, channels.current if channels is not None else None)
            if channels is not None:
                channels.subscribe(child.update)
            child.start()
            try:
                while True:
                    child.check(downstream_ready())
                    # Polling: Faust exposes its rebalance state as flags, not events.
                    await asyncio.sleep(0.01)
            finally:
                await asyncio.get_running_loop().run_in_executor(None, child.stop)

    _register_track(t)
    _register_channel(t, late_counter(registry) if registry is not None else None, tenants)


def _batches(stream: StreamT[bytes], t: Topology) -> AsyncIterator[Sequence[EventT[bytes]]]:
    """The stream's records in batches; each batch is acknowledged when the next is asked for.

    `take_events` is on faust-streaming's Stream, not on its StreamT interface.
    """
    batches: AsyncIterator[Sequence[EventT[bytes]]] = cast(Any, stream).take_events(
        t.settings.batch_max_records, t.settings.batch_within_s
    )
    return batches


class _TrackIndexes:
    """Per partition of wa.status.events: the stuck and retention indexes of its messages.

    Only partitions this worker is assigned are kept: a partition that leaves is dropped, and
    one that arrives is seeded from the tables once its recovery is over (`sync`): the states'
    expiries, and those of the aliases and of the histories kept without a state, which expire
    on their own (so they expire after a restart or a rebalance too, not only when written
    again). Expiries live where the tables do: in memory beside the memory store (one entry per
    key), on disk beside RocksDB.
    """

    def __init__(self, retention: Retention, expiries: Callable[[int], DeadlineSet] | None = None) -> None:
        self.retention = retention
        self._new_expiries = expiries
        self.stuck: dict[int, StuckIndex] = {}
        self.expiries: dict[int, RetentionIndex] = {}
        self._seeded: set[int] = set()

    def of(self, partition: int) -> tuple[StuckIndex, RetentionIndex]:
        stuck = self.stuck.get(partition)
        if stuck is None:
            stuck = self.stuck[partition] = StuckIndex()
        expiries = self.expiries.get(partition)
        if expiries is None:
            backend = self._new_expiries(partition) if self._new_expiries is not None else None
            expiries = self.expiries[partition] = RetentionIndex(self.retention, backend)
        return stuck, expiries

    def forget(self, partition: int, key: bytes) -> None:
        stuck, expiries = self.of(partition)
        stuck.forget(key)
        expiries.forget(key)

    def sync(
        self,
        assigned: set[int],
        states: Callable[[int], Iterable[tuple[bytes, bytes]]],
        others: Callable[[int], Iterable[tuple[bytes, int]]] | None = None,
    ) -> None:
        """Drop partitions no longer assigned; seed newly assigned ones from the tables: each
        state's expiry, and the deadlines of the keys without a state that expire on their own
        (`others`: aliases and dead-letter-only histories, MessageIds.deadlines)."""
        for partition in set(self.stuck) | set(self.expiries) | self._seeded:
            if partition not in assigned:
                self.stuck.pop(partition, None)
                dropped = self.expiries.pop(partition, None)
                if dropped is not None:
                    dropped.expiries.close()
                self._seeded.discard(partition)
        at = now_ms()
        for partition in sorted(assigned - self._seeded):
            stuck, expiries = self.of(partition)
            for key, deadline in others(partition) if others is not None else ():
                expiries.schedule(key, deadline)
            legacy = 0
            for key, value in states(partition):
                legacy += is_legacy_state(value)
                state = state_from_bytes(key, value)
                stuck.note(key, state, at)
                expiries.note(key, state, at)
            if legacy:
                # Read, but reports of these messages now land under channel-scoped keys: the
                # two halves of such a message are only joined by rebuilding the tables.
                log.error(
                    "partition %d holds %d message states keyed provider:message_id (a release before "
                    "channel-scoped keys): rebuild this app id's tables by replay (docs/runbook.md, "
                    "Upgrading to channel-scoped message keys)",
                    partition,
                    legacy,
                )
            self._seeded.add(partition)


def _expiries_backend(t: Topology) -> Callable[[int], DeadlineSet] | None:
    """On disk beside a RocksDB table (its memory must not grow with the table), else in memory."""
    if t.settings.store != "rocksdb":
        return None
    root = Path(t.settings.data_dir) / "retention-index" / t.settings.app_id
    return lambda partition: DiskDeadlines(root / str(partition))


class _Tracker:
    """The track stage's work on one batch of wa.status.events, and its periodic checks."""

    def __init__(self, t: Topology) -> None:
        self._t = t
        self._window_ms = t.settings.window_s * 1000
        self._cohort_ms = t.settings.cohort_s * 1000
        self._stuck_after_ms = t.settings.stuck_after_s * 1000
        self.indexes = _TrackIndexes(t.settings.retention(), _expiries_backend(t))
        self._writer: TableWriter | None = None
        self.ids = MessageIds(t, lambda: self.writer, self.indexes.of)

    @property
    def writer(self) -> TableWriter:
        # The producer exists once the app has started: make the writer at first use.
        if self._writer is None:
            self._writer = TableWriter(self._t.app, self._t.states)
        return self._writer

    async def batch(self, batch: Sequence[EventT[bytes]], outbox: Outbox) -> None:
        """Track every bundle of a batch; outputs are in flight, not yet awaited.

        The bundles fold into one plan (one signals record per channel per batch); a retire
        bundle first lets the events before it land. Each key is read and written in the
        partition of the record that brought it (its changelog partition).
        """
        pending: list[StatusEvent] = []
        partition_of: dict[bytes, int] = {}
        for record in batch:
            try:
                bundle = bundle_parts_from_avro(record.value)
            except SchemaError as exc:
                await _dead_letter(self._t, outbox, record, f"undecodable event bundle: {exc}")
                continue
            partition = record.message.partition
            if bundle.retire or bundle.aliases or bundle.merges:
                if pending:
                    await self._track(pending, partition_of, outbox)
                    pending, partition_of = [], {}
                if bundle.retire:
                    await _retire(
                        self._t,
                        bundle.retire,
                        self.indexes,
                        writer=self.writer,
                        outbox=outbox,
                        partition=partition,
                        ids=self.ids,
                    )
                await self._correlate(bundle, partition, outbox)
            # Reports keyed by a known alias go on to their message's partition (streams/message_ids.py).
            events, notes = await self.ids.route(bundle.events, bundle.notes, partition, outbox)
            await self.ids.notes(notes, partition, outbox)
            for event in events:
                partition_of[event.message_key.encode()] = partition
            pending.extend(events)
        if pending:
            await self._track(pending, partition_of, outbox)

    async def _track(self, events: list[StatusEvent], partition_of: dict[bytes, int], outbox: Outbox) -> None:
        writer, names = self.writer, self._t.settings.topics
        plan = plan_track(
            events, lambda key: writer.get(partition_of[key], key), self._window_ms, self._cohort_ms, at=now_ms()
        )
        for key, value in plan.writes.items():
            outbox.add(await writer.set(partition_of[key], key, value))
        received_at = max((event.received_at for event in events), default=None)
        for key, state in plan.states.items():
            stuck, expiries = self.indexes.of(partition_of[key])
            stuck.note(key, state, received_at)
            expiries.note(key, state, received_at)
        await outbox.send(names.changes, plan.changes)
        await outbox.send(names.audit, plan.audits)
        await outbox.send(names.signals, plan.signals)
        await self.ids.remember(plan.history, partition_of, outbox)
        await self.ids.tell(events, outbox)

    async def _correlate(self, bundle: Bundle, partition: int, outbox: Outbox) -> None:
        """Aliases to record on this partition, and states tracked under aliases to join here."""
        if bundle.aliases:
            await self.ids.record(bundle.aliases, partition, outbox)
        if bundle.merges:
            changes = await self.ids.merge(bundle.merges, partition, outbox)
            change_codec = codec("status_change")
            await outbox.send(self._t.settings.topics.changes, [(k, change_codec.encode(c)) for k, c in changes])

    async def check(self) -> None:
        """Stuck messages become alerts (via the channel agent); messages past their retention
        are sent back to the track agent to be retired."""
        t = self._t
        if t.app.rebalancing or t.app.in_recovery:
            return  # the table is not complete for a partition that is being recovered
        events_topic = t.events.get_topic_name()
        assigned = {tp.partition for tp in t.app.consumer.assignment() if tp.topic == events_topic}
        writer, names = self.writer, t.settings.topics
        self.indexes.sync(assigned, writer.items, self.ids.deadlines)
        due = [
            (partition, key)
            for partition, index in self.indexes.stuck.items()
            for key in index.due(now_ms(), self._stuck_after_ms)
        ]
        states = [state_from_bytes(key, value) for partition, key in due if (value := writer.get(partition, key))]
        outbox = Outbox(t)
        await outbox.send(names.signals, stuck_signals(states, self._stuck_after_ms))
        expired = [key for index in self.indexes.expiries.values() for key in index.due()]
        if expired:
            log.info("retention: %s messages due, asking the tracker to re-check them", len(expired))
        for partition, key, value in retire_bundles(expired, t.settings.partitions):
            outbox.add(await t.app.producer.send(names.events, key, value, partition, None, None))
        await outbox.flush()


def _register_track(t: Topology) -> None:
    tracker = _Tracker(t)

    @t.app.agent(t.events, name="track")
    async def track_agent(stream: StreamT[bytes]) -> None:
        outbox = Outbox(t)
        async for batch in _batches(stream, t):
            await tracker.batch(batch, outbox)
            await outbox.flush()
            await tracker.writer.persisted()
            await tracker.ids.persisted()

    @t.app.timer(interval=t.settings.tick_interval_s)  # type: ignore[untyped-decorator]
    async def find_stuck_messages() -> None:
        await tracker.check()


async def _retire(
    t: Topology,
    keys: list[bytes],
    indexes: _TrackIndexes,
    *,
    writer: TableWriter,
    outbox: Outbox,
    partition: int,
    ids: MessageIds,
) -> None:
    """Delete messages whose retention has passed (tombstones in the changelog); unfinished ones
    get an `expired` change. Runs inside the track agent: the keys hash to the record's partition.
    A message's history leaves with it; aliases and dead-letter-only histories have their own."""
    changes: list[tuple[bytes | None, bytes]] = []
    expired: list[MessageState] = []
    change_codec = codec("status_change")
    _, expiries = indexes.of(partition)
    now = expiries.watermark
    for key in keys:
        value = writer.get(partition, key)
        if value is None:
            await ids.expire(partition, key, now, outbox)
            continue
        state = state_from_bytes(key, value)
        if indexes.retention.expiry(state) > now:
            continue  # it changed since it was indexed
        outbox.add(await writer.delete(partition, key))
        await ids.retired(partition, key, outbox)
        indexes.forget(partition, key)
        if state.status not in FINISHED:
            changes.append((key, change_codec.encode(expired_record(state, now))))
            expired.append(state)
    await outbox.send(t.settings.topics.changes, changes)
    # Their cohorts count them as expired instead of pending.
    await outbox.send(t.settings.topics.signals, expiry_signals(expired, t.settings.cohort_s * 1000))


def _register_channel(t: Topology, late: Counter | None = None, tenants: TenantFigures | None = None) -> None:
    names = t.settings.topics
    policy = t.settings.policy()
    alert_codec = codec("alert")
    metric_codec = codec("metric_window")

    @t.app.agent(t.signals, name="channel")
    async def channel_agent(stream: StreamT[bytes]) -> None:
        outbox = Outbox(t)
        writer = TableWriter(t.app, t.channels)
        funnel = FunnelStage(t)
        async for batch in _batches(stream, t):
            # Each channel's state is read once and written once per batch, however many
            # signals records it had.
            states: dict[bytes, tuple[int, ChannelState]] = {}
            for record in batch:
                key = record.message.key or b""
                try:
                    provider, channel, signals = decode_signals(record.value)
                except SchemaError as exc:
                    await _dead_letter(t, outbox, record, f"undecodable channel signals: {exc}")
                    continue
                if tenants is not None:
                    tenants.count_dead_letters(channel, signals.dead_letters)
                partition = record.message.partition
                if key in states:
                    state = states[key][1]
                else:
                    current = writer.get(partition, key)
                    state = from_bytes(current) if current is not None else ChannelState(provider, channel)
                    states[key] = (partition, state)
                out = apply_signals(state, signals, policy, now_ms())
                if signals.funnel:
                    closed = funnel.fold(
                        partition,
                        record.message.offset,
                        provider=provider,
                        channel=channel,
                        deltas=signals.funnel,
                        watermark=state.watermark,
                    )
                    if closed:
                        log.warning(
                            "channel %s: %s funnel deltas for cohorts closed by retention (not folded)", key, closed
                        )
                        count_late(late, "funnel_cohorts", provider, closed)
                if out.dropped_late:
                    log.warning(
                        "channel %s: %s window partials (%s transitions) arrived after the allowed lateness",
                        key,
                        out.dropped_late,
                        out.late_transitions,
                    )
                    count_late(late, "channel_windows", provider, out.late_transitions)
                await outbox.send(
                    names.alerts, [(str(a["alert_key"]).encode(), alert_codec.encode(a)) for a in out.alerts]
                )
                await outbox.send(
                    names.metrics,
                    [(f"{m['provider']}:{m['channel']}".encode(), metric_codec.encode(m)) for m in out.metrics],
                )
            for key, (partition, state) in states.items():
                outbox.add(await writer.set(partition, key, to_bytes(state)))
                funnel.watch(partition, state.provider, state.channel, state.watermark)
            closed = await funnel.flush(outbox)
            if closed:
                log.info("funnel: %s cohort rows closed by retention left the table", closed)
            await outbox.flush()
            await writer.persisted()
            await funnel.persisted()

    @t.app.timer(interval=t.settings.tick_interval_s)  # type: ignore[untyped-decorator]
    async def tick_channels() -> None:
        # Ticks go through the signals topic so that the channel agent, which owns the
        # key's partition, is the only writer of the channel table.
        outbox = Outbox(t)
        ticks = []
        for key in list(t.channels.keys()):
            provider, _, channel = key.decode().partition(":")
            ticks.append((key, ChannelSignals(provider, channel, tick=True).encode()))
        await outbox.send(names.signals, ticks)
        await outbox.flush()
