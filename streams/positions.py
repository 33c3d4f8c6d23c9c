"""Where the worker's consumer groups stand on each partition: ends, commits and log starts.

Measured from what the groups committed, not from one process's position, so every worker of
an app sees the whole group, and the figure agrees with Kafka's own `kafka-consumer-groups
--describe`. The lag gauge (streams/lag.py), the stall repair it drives
(streams/faust_ext/stall_repair.py) and the replay's progress (streams/replay.py) all ask
`LagProbe`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from schemas.topics import described_partitions
from streams.faust_ext.stalls import Offsets
from streams.settings import WorkerSettings


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
