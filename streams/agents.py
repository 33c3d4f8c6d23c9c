"""The worker's stages: normalize (consumer loop), track and channel (Faust agents).

Agents stay thin: each record goes through one pure planning call (streams/batches.py,
streams/domain/channel.py) and the rest is I/O. Faust acknowledges a record even when its
agent raises, so nothing here may raise for bad input: undecodable records go to the
dead-letter topic with their reason. Outputs are sent with the producer directly and their
delivery is awaited once per record (a bundle), so a committed offset never runs ahead of
what it produced.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable

import mode
from faust.types import EventT, StreamT

from schemas.codec import SchemaError, codec
from streams.adapters.registry import Resolver
from streams.batches import ChannelSignals, decode_signals, now_ms, plan_track, retire_bundles, stuck_signals
from streams.domain.channel import ChannelState, apply_signals, from_bytes, to_bytes
from streams.domain.events import StatusEvent
from streams.domain.retention import FINISHED, Retention, RetentionIndex
from streams.domain.stuck import StuckIndex
from streams.normalize_loop import NormalizeLoop
from streams.normalize_process import NormalizeProcess
from streams.outputs import Source, dead_letter_record
from streams.partitioning import key_partition
from streams.records import bundle_from_avro, state_from_bytes
from streams.table_writes import TableWriter
from streams.topology import Topology
from streams.tracker import expired_record

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


def register_agents(t: Topology, accept: Callable[[StatusEvent], bool], resolve: Resolver) -> None:
    """Attach the stages; `accept` is the channels' status filter, `resolve` picks adapters."""

    def downstream_ready() -> bool:
        return not (t.app.rebalancing or t.app.in_recovery)

    @t.app.service
    class NormalizeService(mode.Service):
        """Runs the normalize loop for as long as the worker runs: in a child process (a second
        core) or, with STATUSFLOW_NORMALIZE_PROCESS=false, in this event loop."""

        @mode.Service.task
        async def _normalize(self) -> None:
            if not t.settings.normalize_process:
                await NormalizeLoop(t.settings, accept, resolve, downstream_ready=downstream_ready).run()
                return
            child = NormalizeProcess(t.settings)
            child.start()
            try:
                while True:
                    child.check(downstream_ready())
                    # Polling: Faust exposes its rebalance state as flags, not events.
                    await asyncio.sleep(0.01)
            finally:
                await asyncio.get_running_loop().run_in_executor(None, child.stop)

    _register_track(t)
    _register_channel(t)


def _register_track(t: Topology) -> None:
    names = t.settings.topics
    window_ms = t.settings.window_s * 1000
    stuck_after_ms = t.settings.stuck_after_s * 1000
    stuck_indexes: dict[int, StuckIndex] = {}
    retention = t.settings.retention()
    retention_indexes: dict[int, RetentionIndex] = {}
    seeded = False

    @t.app.agent(t.events, name="track")
    async def track_agent(stream: StreamT[bytes]) -> None:
        outbox = Outbox(t)
        writer = TableWriter(t.app, t.states)
        async for record in stream.events():
            try:
                events, retire = bundle_from_avro(record.value)
            except SchemaError as exc:
                await _dead_letter(t, outbox, record, f"undecodable event bundle: {exc}")
                await outbox.flush()
                continue
            partition = record.message.partition
            if retire:
                watermark = retention_indexes.setdefault(partition, RetentionIndex(retention)).watermark
                await _retire(t, retire, retention, writer=writer, outbox=outbox, partition=partition, now=watermark)
            plan = plan_track(events, t.states.get, window_ms)
            # Every key of a bundle hashes to the bundle's partition: its changelog partition.
            for key, value in plan.writes.items():
                outbox.add(await writer.set(partition, key, value))
            index = stuck_indexes.setdefault(partition, StuckIndex())
            expiries = retention_indexes.setdefault(partition, RetentionIndex(retention))
            received_at = max((event.received_at for event in events), default=None)
            for key, state in plan.states.items():
                index.note(key, state)
                expiries.note(key, state, received_at)
            await outbox.send(names.changes, plan.changes)
            await outbox.send(names.audit, plan.audits)
            await outbox.send(names.signals, plan.signals)
            await outbox.flush()
            await writer.persisted()

    @t.app.timer(interval=t.settings.tick_interval_s)  # type: ignore[untyped-decorator]
    async def find_stuck_messages() -> None:
        nonlocal seeded
        if not seeded:
            # Once per start: messages already waiting in the recovered table join the index;
            # from then on only what is tracked is indexed, and checks never scan the table.
            seeded = True
            for key, value in list(t.states.items()):
                if value is not None:
                    partition = key_partition(key, t.settings.partitions)
                    state = state_from_bytes(key, value)
                    stuck_indexes.setdefault(partition, StuckIndex()).note(key, state)
                    retention_indexes.setdefault(partition, RetentionIndex(retention)).note(key, state, now_ms())
        due = [key for index in stuck_indexes.values() for key in index.due(now_ms(), stuck_after_ms)]
        states = [state_from_bytes(key, value) for key in due if (value := t.states.get(key)) is not None]
        outbox = Outbox(t)
        await outbox.send(names.signals, stuck_signals(states, stuck_after_ms))
        expired = [key for index in retention_indexes.values() for key in index.due()]
        if expired:
            log.info("retention: %s messages due, asking the tracker to re-check them", len(expired))
        for partition, key, value in retire_bundles(expired, t.settings.partitions):
            outbox.add(await t.app.producer.send(names.events, key, value, partition, None, None))
        await outbox.flush()


async def _retire(
    t: Topology,
    keys: list[bytes],
    retention: Retention,
    *,
    writer: TableWriter,
    outbox: Outbox,
    partition: int,
    now: int,
) -> None:
    """Delete messages whose retention has passed (tombstones in the changelog); unfinished ones
    get an `expired` change. Runs inside the track agent: the keys hash to the record's partition."""
    changes: list[tuple[bytes | None, bytes]] = []
    change_codec = codec("status_change")
    for key in keys:
        value = t.states.get(key)
        if value is None:
            continue
        state = state_from_bytes(key, value)
        if retention.expiry(state) > now:
            continue  # it changed since it was indexed
        outbox.add(await writer.delete(partition, key))
        if state.status not in FINISHED:
            changes.append((key, change_codec.encode(expired_record(state, now))))
    await outbox.send(t.settings.topics.changes, changes)


def _register_channel(t: Topology) -> None:
    names = t.settings.topics
    policy = t.settings.policy()
    alert_codec = codec("alert")
    metric_codec = codec("metric_window")

    @t.app.agent(t.signals, name="channel")
    async def channel_agent(stream: StreamT[bytes]) -> None:
        outbox = Outbox(t)
        writer = TableWriter(t.app, t.channels)
        async for record in stream.events():
            key = record.message.key or b""
            try:
                provider, channel, signals = decode_signals(record.value)
            except SchemaError as exc:
                await _dead_letter(t, outbox, record, f"undecodable channel signals: {exc}")
                await outbox.flush()
                continue
            current = t.channels.get(key)
            state = from_bytes(current) if current is not None else ChannelState(provider, channel)
            out = apply_signals(state, signals, policy, now_ms())
            outbox.add(await writer.set(record.message.partition, key, to_bytes(state)))
            if out.dropped_late:
                log.info("channel %s: %s window partials arrived after the allowed lateness", key, out.dropped_late)
            await outbox.send(names.alerts, [(str(a["alert_key"]).encode(), alert_codec.encode(a)) for a in out.alerts])
            await outbox.send(
                names.metrics,
                [(f"{m['provider']}:{m['channel']}".encode(), metric_codec.encode(m)) for m in out.metrics],
            )
            await outbox.flush()
            await writer.persisted()

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
