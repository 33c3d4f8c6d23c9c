"""Consumer lag of the worker's groups, a gauge on the worker's GET /metrics, and the repair of
partitions that stall with records behind their committed offset (streams/stalls.py).

Lag is measured from what the groups committed, not from one process's position: every worker
of an app reports the lag of the whole group, so a stalled or paused worker's partitions show
up on its peers' pages (the paused one answers nothing), and the figure agrees with Kafka's
own `kafka-consumer-groups --describe`.

The repair half corrects faust-streaming 0.15.3's skipped records (streams/stalls.py says which
behaviour and why no upstream issue tracks it); it seeks through the consumer's `seek_wait`
and reads the commit guard's holds (streams/commits.py).
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Mapping

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError
from faust.types import TP
from prometheus_client import CollectorRegistry, Counter, Gauge

from schemas.topics import described_partitions
from streams.commits import GaplessCommitConsumer
from streams.settings import WorkerSettings
from streams.stalls import Offsets, StalledPartitions
from streams.topology import Topology
from streams.watchdog import HangWatch

log = logging.getLogger(__name__)


def partition_offsets(
    ends: Mapping[TopicPartition, int],
    committed: Mapping[TopicPartition, int],
    beginnings: Mapping[TopicPartition, int],
) -> dict[TopicPartition, Offsets]:
    """Where a group stands on each partition, from its ends, commits and log starts.

    A partition the group never committed resumes from the log's start (the group starts from
    the earliest offset), and so does one committed below it (retention removed records).
    """
    return {tp: Offsets(committed=committed.get(tp), end=end, start=beginnings.get(tp, 0)) for tp, end in ends.items()}


def lag_by_topic(offsets: Mapping[TopicPartition, Offsets]) -> dict[str, int]:
    """Records per topic between each partition's position and its end."""
    lag: dict[str, int] = {}
    for tp, where in offsets.items():
        lag[tp.topic] = lag.get(tp.topic, 0) + where.behind
    return lag


@dataclasses.dataclass(frozen=True)
class GroupTopics:
    """A consumer group of the worker and the topics it reads."""

    group: str
    topics: tuple[str, ...]


def worker_groups(settings: WorkerSettings) -> list[GroupTopics]:
    """The normalize loop's group (raw log) and Faust's group (events, signals)."""
    names = settings.topics
    return [
        GroupTopics(f"{settings.app_id}-normalize", (names.raw,)),
        GroupTopics(settings.app_id, (names.events, names.signals)),
    ]


class LagProbe:
    """Measures lag on demand. Clients live for one measurement (two short connections every few
    seconds), so nothing is left open when the worker stops."""

    def __init__(self, settings: WorkerSettings) -> None:
        self._settings = settings
        self._groups = worker_groups(settings)

    async def measure_partitions(self) -> dict[str, dict[TopicPartition, Offsets]]:
        """group -> where it stands on each partition of its topics."""
        admin = AIOKafkaAdminClient(bootstrap_servers=self._settings.bootstrap_servers)
        await admin.start()
        try:
            consumer = AIOKafkaConsumer(bootstrap_servers=self._settings.bootstrap_servers, group_id=None)
            try:
                await consumer.start()
                return await self._measure(admin, consumer)
            finally:
                await consumer.stop()  # also after a failed start: it holds a client either way
        finally:
            await admin.close()

    async def _measure(
        self, admin: AIOKafkaAdminClient, consumer: AIOKafkaConsumer
    ) -> dict[str, dict[TopicPartition, Offsets]]:
        out: dict[str, dict[TopicPartition, Offsets]] = {}
        for group in self._groups:
            partitions = described_partitions(await admin.describe_topics(list(group.topics)))
            if not partitions:
                continue
            ends = await consumer.end_offsets(partitions)
            beginnings = await consumer.beginning_offsets(partitions)
            offsets = await admin.list_consumer_group_offsets(group.group, partitions=partitions)
            committed = {tp: meta.offset for tp, meta in offsets.items() if meta.offset >= 0}
            out[group.group] = partition_offsets(ends, committed, beginnings)
        return out


LAG_GAUGE = "statusflow_worker_consumer_lag"


def lag_gauge(registry: CollectorRegistry) -> Gauge:
    """The gauge, in the registry that the worker's GET /metrics exposes."""
    return Gauge(
        LAG_GAUGE,
        "Records of a topic not yet committed by the worker's consumer group.",
        ["group", "topic"],
        registry=registry,
    )


REPAIRS_COUNTER = "statusflow_worker_stalled_partition_repairs"


def repairs_counter(registry: CollectorRegistry) -> Counter:
    """Seeks back to the committed offset of a stalled partition (streams/stalls.py)."""
    return Counter(
        REPAIRS_COUNTER,
        "Partitions re-read from their committed offset after records behind it stayed unprocessed.",
        ["topic"],
        registry=registry,
    )


async def refresh(probe: LagProbe, gauge: Gauge) -> dict[str, dict[TopicPartition, Offsets]] | None:
    """Measure once and set the gauge; while the broker is unreachable the last values stay."""
    try:
        measured = await probe.measure_partitions()
    except KafkaError as exc:
        log.warning("consumer lag not measured: %r", exc)
        return None
    for group, offsets in measured.items():
        for topic, lag in lag_by_topic(offsets).items():
            gauge.labels(group=group, topic=topic).set(lag)
    return measured


async def repair_stalled(
    t: Topology,
    stalled: StalledPartitions,
    offsets: Mapping[TopicPartition, Offsets],
    repairs: Counter,
    hangs: HangWatch | None = None,
) -> None:
    """Seek this worker's stalled partitions back to their committed offsets; tell `hangs` what
    waits on them and what was processed, so that agents that stopped are found."""
    app = t.app
    if app.rebalancing or app.in_recovery:
        stalled.reset()  # positions move and restart in a rebalance: start watching afresh
        if hangs is not None:
            hangs.forget_partitions()
        return
    assigned = set(app.consumer.assignment())
    mine = {tp: where for tp, where in offsets.items() if TP(tp.topic, tp.partition) in assigned}
    consumer = app.consumer
    if isinstance(consumer, GaplessCommitConsumer):
        # The group resumes no lower than this: it bounds the consumer's first commit too.
        for tp, where in mine.items():
            consumer.raise_floor(TP(tp.topic, tp.partition), where.position)
        # A record skipped behind processed ones is known at once, without waiting for a stall;
        # two commit intervals let a hold that resolves itself (a rebalance's leftovers) clear.
        held_s = max(t.settings.lag_interval_s, 2 * t.settings.commit_interval_s)
        for skipped_tp, offset in consumer.skipped(older_than_s=held_s).items():
            log.warning(
                "%s[%s]: record at offset %s skipped while later ones were processed; reading again from there",
                skipped_tp.topic,
                skipped_tp.partition,
                offset,
            )
            await _read_again(t, repairs, skipped_tp, offset)
    counts = consumer.processed if isinstance(consumer, GaplessCommitConsumer) else {}
    processed = {tp: counts.get(TP(tp.topic, tp.partition), 0) for tp in mine}
    if hangs is not None and isinstance(consumer, GaplessCommitConsumer):  # counts only it keeps
        hangs.observe_partitions({tp: where.behind for tp, where in mine.items()}, processed)
    for tp, offset in stalled.observe(mine, time.monotonic(), processed):
        log.warning(
            "%s[%s]: %s records behind committed offset %s and none processed for %ss; reading them again from there",
            tp.topic,
            tp.partition,
            mine[tp].behind,
            offset,
            t.settings.stalled_partition_s,
        )
        await _read_again(t, repairs, TP(tp.topic, tp.partition), offset)


async def _read_again(t: Topology, repairs: Counter, tp: TP, offset: int) -> None:
    """Count the repair and seek `tp` back to `offset`; seek_wait runs in the consumer's own
    thread and resets its read offset for the partition, so the records are delivered again.

    A rebalance can take the partition away between the measurement and the seek: the new
    owner reads it from the committed offset anyway, so that seek is dropped (an exception in
    a Faust timer would crash the worker: the two-worker bench saw it)."""
    if tp not in t.app.consumer.assignment() or t.app.rebalancing:
        log.info("%s[%s]: not read again from %s, no longer assigned to this worker", tp.topic, tp.partition, offset)
        return
    try:
        await t.app.consumer.seek_wait({tp: offset})
    except (KafkaError, TimeoutError) as exc:  # IllegalStateError: unassigned meanwhile
        log.warning("%s[%s]: not read again from %s (%r)", tp.topic, tp.partition, offset, exc)
        return
    repairs.labels(topic=tp.topic).inc()


def register_lag(t: Topology, registry: CollectorRegistry, hangs: HangWatch | None = None) -> None:
    """Every `lag_interval_s`: refresh the lag gauge (a scrape then costs nothing), repair this
    worker's stalled partitions and feed `hangs` (with a heartbeat of the event loop)."""
    probe, gauge, repairs = LagProbe(t.settings), lag_gauge(registry), repairs_counter(registry)
    stalled = StalledPartitions(t.settings.stalled_partition_s)

    @t.app.timer(interval=t.settings.lag_interval_s)  # type: ignore[untyped-decorator]
    async def measure_consumer_lag() -> None:
        measured = await refresh(probe, gauge)
        if measured is not None:
            await repair_stalled(t, stalled, measured.get(t.settings.app_id, {}), repairs, hangs)

    if hangs is not None:

        @t.app.timer(interval=hangs.beat_every_s)  # type: ignore[untyped-decorator]
        async def beat() -> None:
            hangs.beat()
