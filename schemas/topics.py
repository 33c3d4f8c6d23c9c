"""Topic layout (partitions, retention, compaction) and its creation on the broker."""

from __future__ import annotations

import logging

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
}


def topic_configs(settings: KafkaSettings) -> dict[str, dict[str, str]]:
    """TOPIC_CONFIGS with the configured retention of the two topics that hold raw payloads."""
    configured = {role: dict(config) for role, config in TOPIC_CONFIGS.items()}
    configured["raw"]["retention.ms"] = str(settings.raw_retention_ms)
    configured["dlq"]["retention.ms"] = str(settings.dlq_retention_ms)
    return configured


def topic_specs(settings: KafkaSettings) -> list[NewTopic]:
    """Every topic of the contract, with the configured partitions and raw/DLQ retention."""
    names = settings.topics.model_dump()
    return [
        NewTopic(
            name=names[role],
            num_partitions=settings.partitions,
            replication_factor=settings.replication_factor,
            topic_configs=config,
        )
        for role, config in topic_configs(settings).items()
    ]


async def ensure_topics(settings: KafkaSettings) -> list[str]:
    """Create the topics that do not exist yet; returns the names created."""
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.bootstrap_servers)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [spec for spec in topic_specs(settings) if spec.name not in existing]
        if missing:
            try:
                await admin.create_topics(missing)
            except TopicAlreadyExistsError:
                # Another process created them between our list and our create.
                log.info("topics created concurrently by another process")
        created = [spec.name for spec in missing]
        if created:
            log.info("created topics %s", created)
        return created
    finally:
        await admin.close()
