"""Consumer lag of the worker's groups, for the worker's /metrics page.

Lag is measured from what the groups committed, not from one process's position: every worker
of an app reports the lag of the whole group, so a stalled or paused worker's partitions show
up on its peers' pages (the paused one answers nothing), and the figure agrees with Kafka's
own `kafka-consumer-groups --describe`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError
from prometheus_client import CollectorRegistry, Gauge, generate_latest

from streams.settings import WorkerSettings


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
    """Measures lag on demand with one admin client and one group-less consumer, started lazily."""

    def __init__(self, settings: WorkerSettings) -> None:
        self._settings = settings
        self._groups = worker_groups(settings)
        self._admin: AIOKafkaAdminClient | None = None
        self._consumer: AIOKafkaConsumer | None = None

    async def _clients(self) -> tuple[AIOKafkaAdminClient, AIOKafkaConsumer]:
        if self._admin is None or self._consumer is None:
            admin = AIOKafkaAdminClient(bootstrap_servers=self._settings.bootstrap_servers)
            consumer = AIOKafkaConsumer(bootstrap_servers=self._settings.bootstrap_servers, group_id=None)
            await admin.start()
            await consumer.start()
            self._admin, self._consumer = admin, consumer
        return self._admin, self._consumer

    async def measure(self) -> dict[tuple[str, str], int]:
        """(group, topic) -> records not yet committed by the group."""
        admin, consumer = await self._clients()
        await consumer.topics()  # refreshes the metadata that partitions_for_topic reads
        out: dict[tuple[str, str], int] = {}
        for group in self._groups:
            partitions = [
                TopicPartition(topic, p)
                for topic in group.topics
                for p in sorted(consumer.partitions_for_topic(topic) or ())
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

    async def exposition(self) -> bytes:
        """The Prometheus text of the lag gauge (empty of samples while the broker is unreachable)."""
        registry = CollectorRegistry()
        gauge = Gauge(
            "statusflow_worker_consumer_lag",
            "Records of a topic not yet committed by the worker's consumer group.",
            ["group", "topic"],
            registry=registry,
        )
        try:
            measured = await self.measure()
        except KafkaError:
            measured = {}
        for (group, topic), lag in measured.items():
            gauge.labels(group=group, topic=topic).set(lag)
        return generate_latest(registry)

    async def close(self) -> None:
        """Stop the clients."""
        if self._consumer is not None:
            await self._consumer.stop()
        if self._admin is not None:
            await self._admin.close()
        self._admin = self._consumer = None
