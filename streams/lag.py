"""Consumer lag of the worker's groups, a gauge on the worker's GET /metrics.

Lag is measured from what the groups committed, not from one process's position: every worker
of an app reports the lag of the whole group, so a stalled or paused worker's partitions show
up on its peers' pages (the paused one answers nothing), and the figure agrees with Kafka's
own `kafka-consumer-groups --describe`.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError
from prometheus_client import CollectorRegistry, Gauge

from streams.settings import WorkerSettings
from streams.topology import Topology

log = logging.getLogger(__name__)


def topic_lag(
    ends: Mapping[TopicPartition, int],
    committed: Mapping[TopicPartition, int],
    beginnings: Mapping[TopicPartition, int],
) -> dict[str, int]:
    """Records per topic between each partition's committed offset and its end.

    A partition the group never committed lags by everything still on it (the group starts
    from the earliest offset); a committed offset below the log's start (retention removed
    records) counts from the start.
    """
    lag: dict[str, int] = {}
    for tp, end in ends.items():
        start = beginnings.get(tp, 0)
        position = max(committed.get(tp, start), start)
        lag[tp.topic] = lag.get(tp.topic, 0) + max(end - position, 0)
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

    async def measure(self) -> dict[tuple[str, str], int]:
        """(group, topic) -> records not yet committed by the group."""
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

    async def _measure(self, admin: AIOKafkaAdminClient, consumer: AIOKafkaConsumer) -> dict[tuple[str, str], int]:
        out: dict[tuple[str, str], int] = {}
        for group in self._groups:
            described = await admin.describe_topics(list(group.topics))
            partitions = [
                TopicPartition(topic["topic"], p["partition"])
                for topic in described
                if topic["error_code"] == 0
                for p in topic["partitions"]
            ]
            if not partitions:
                continue
            ends = await consumer.end_offsets(partitions)
            beginnings = await consumer.beginning_offsets(partitions)
            offsets = await admin.list_consumer_group_offsets(group.group, partitions=partitions)
            committed = {tp: meta.offset for tp, meta in offsets.items() if meta.offset >= 0}
            for topic, lag in topic_lag(ends, committed, beginnings).items():
                out[(group.group, topic)] = lag
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


async def refresh(probe: LagProbe, gauge: Gauge) -> None:
    """Measure once and set the gauge; while the broker is unreachable the last values stay."""
    try:
        measured = await probe.measure()
    except KafkaError as exc:
        log.warning("consumer lag not measured: %r", exc)
        return
    for (group, topic), lag in measured.items():
        gauge.labels(group=group, topic=topic).set(lag)


def register_lag(t: Topology, registry: CollectorRegistry) -> None:
    """Refresh the lag gauge every `lag_interval_s` (a scrape then costs nothing)."""
    probe, gauge = LagProbe(t.settings), lag_gauge(registry)

    @t.app.timer(interval=t.settings.lag_interval_s)  # type: ignore[untyped-decorator]
    async def measure_consumer_lag() -> None:
        await refresh(probe, gauge)
