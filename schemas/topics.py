"""Topic layout (partitions, retention, compaction) and its creation on the broker."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from typing import Any

from aiokafka import TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from schemas.settings import KafkaSettings

log = logging.getLogger(__name__)

_WEEK_MS = 7 * 24 * 3600 * 1000

# Per-topic configuration beyond partitions. The raw log is kept longest: it is the source
# of truth that every derived topic can be rebuilt from. Raw and DLQ retention come from the
# settings (STATUSFLOW_RAW_RETENTION_MS, STATUSFLOW_DLQ_RETENTION_MS: see topic_configs); these
# are their defaults. Settings apply when a topic is created; docs/security.md says how to
# change an existing one.
TOPIC_CONFIGS: dict[str, dict[str, str]] = {
    "raw": {"retention.ms": str(4 * _WEEK_MS), "cleanup.policy": "delete"},
    "events": {"retention.ms": str(_WEEK_MS), "cleanup.policy": "delete"},
    "changes": {"retention.ms": str(_WEEK_MS), "cleanup.policy": "delete"},
    "alerts": {"retention.ms": str(_WEEK_MS), "cleanup.policy": "delete"},
    "metrics": {"retention.ms": str(4 * _WEEK_MS), "cleanup.policy": "delete"},
    "dlq": {"retention.ms": str(4 * _WEEK_MS), "cleanup.policy": "delete"},
    "audit": {"retention.ms": str(_WEEK_MS), "cleanup.policy": "delete"},
    "signals": {"retention.ms": str(_WEEK_MS), "cleanup.policy": "delete"},
    # Cohort funnel upserts: compaction keeps the last record per cohort, which is the truth.
    "funnel": {"retention.ms": "-1", "cleanup.policy": "compact"},
    # What `statusflow redrive` sent: the last redrive of each webhook counts (compaction), and
    # nothing outlives the dead letters it refers to (a redrive is written after its dead letter,
    # with the same retention: see topic_configs).
    "redrive": {"retention.ms": str(4 * _WEEK_MS), "cleanup.policy": "compact,delete"},
    # The notifier's parked notifications and its dedup ledger (one record per sink and alert id:
    # compaction). Both outlive wa.alerts, so that no alert the notifier may still read again is
    # forgotten; the notifier creates them with its own retention setting when it is first.
    "alerts_parked": {"retention.ms": str(2 * _WEEK_MS), "cleanup.policy": "delete"},
    "alerts_delivered": {"retention.ms": str(2 * _WEEK_MS), "cleanup.policy": "compact,delete"},
}


# Roles whose partition count is fixed rather than STATUSFLOW_PARTITIONS. The parking topic is
# small and read whole by one notifier; it has had one partition since the notifier created it
# alone, and existing deployments keep it, so `statusflow topics --check` must expect one.
TOPIC_PARTITIONS: dict[str, int] = {"alerts_parked": 1}


def topic_configs(settings: KafkaSettings) -> dict[str, dict[str, str]]:
    """TOPIC_CONFIGS with the configured retention of the two topics that hold raw payloads
    (and of the redrive log, which refers to dead letters)."""
    configured = {role: dict(config) for role, config in TOPIC_CONFIGS.items()}
    configured["raw"]["retention.ms"] = str(settings.raw_retention_ms)
    configured["dlq"]["retention.ms"] = str(settings.dlq_retention_ms)
    configured["redrive"]["retention.ms"] = str(settings.dlq_retention_ms)
    return configured


def topic_specs(settings: KafkaSettings) -> list[NewTopic]:
    """Every topic of the contract, with the configured partitions and raw/DLQ retention."""
    names = settings.topics.model_dump()
    return [
        NewTopic(
            name=names[role],
            num_partitions=TOPIC_PARTITIONS.get(role, settings.partitions),
            replication_factor=settings.replication_factor,
            topic_configs=config,
        )
        for role, config in topic_configs(settings).items()
    ]


async def ensure_topics(
    settings: KafkaSettings, extra: Sequence[NewTopic] = (), *, timeout_s: float = 60.0
) -> list[str]:
    """Create the contract's topics (and `extra` ones) that do not exist yet, then wait until every
    partition of each has a leader; returns the names created.

    Waiting matters: a consumer group that joins while a new topic has no leader yet is assigned
    none of its partitions (Faust's assignor ignores "missing" topics) and only notices the topic
    at its next metadata refresh, minutes later; a producer meanwhile gets NotLeader errors.
    """
    # An extra spec replaces the contract's of the same name (the notifier's own retention).
    specs = list({spec.name: spec for spec in [*topic_specs(settings), *extra]}.values())
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.bootstrap_servers)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [spec for spec in specs if spec.name not in existing]
        if missing:
            try:
                await admin.create_topics(missing)
            except TopicAlreadyExistsError:
                # Another process created them between our list and our create.
                log.info("topics created concurrently by another process")
        created = [spec.name for spec in missing]
        if created:
            log.info("created topics %s", created)
        await _wait_for_leaders(admin, [spec.name for spec in specs], timeout_s)
        return created
    finally:
        await admin.close()


def described_partitions(descriptions: Sequence[dict[str, Any]]) -> list[TopicPartition]:
    """The partitions of the described topics that exist, in order."""
    return sorted(
        TopicPartition(d["topic"], p["partition"])
        for d in descriptions
        if d.get("error_code") == 0
        for p in d.get("partitions") or []
    )


async def partitions_of(bootstrap_servers: str, topics: list[str]) -> list[TopicPartition]:
    """Every partition of `topics` that exist, for clients that assign partitions themselves."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers)
    await admin.start()
    try:
        return described_partitions(await admin.describe_topics(topics))
    finally:
        await admin.close()


def leaderless(descriptions: Sequence[dict[str, Any]]) -> list[str]:
    """Names of described topics that are unknown or have a partition without a leader."""
    waiting = []
    for topic in descriptions:
        partitions = topic.get("partitions") or []
        if (
            topic.get("error_code")
            or not partitions
            or any(p.get("error_code") or p.get("leader", -1) < 0 for p in partitions)
        ):
            waiting.append(str(topic.get("topic")))
    return waiting


async def _wait_for_leaders(admin: AIOKafkaAdminClient, names: list[str], timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while waiting := leaderless(await admin.describe_topics(names)):
        if time.monotonic() > deadline:
            raise TimeoutError(f"topics without a partition leader after {timeout_s:.0f}s: {sorted(waiting)}")
        await asyncio.sleep(0.1)  # polling the broker's metadata: there is no event to wait on
