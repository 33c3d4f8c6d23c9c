"""Settings shared by every statusflow process: the broker and the topic contract.

Each process builds one settings object in its entry point and passes it down; nothing here
reads the environment at import time.
"""

from __future__ import annotations

from pydantic import AliasChoices, Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from schemas.event_loop import EventLoopKind


class TopicNames(BaseSettings):
    """Topic names (docs/topics.md: names configurable, defaults shown)."""

    model_config = SettingsConfigDict(env_prefix="STATUSFLOW_TOPIC_", frozen=True, extra="ignore")

    raw: str = "wa.webhooks.raw"
    events: str = "wa.status.events"
    changes: str = "wa.status.changes"
    alerts: str = "wa.alerts"
    metrics: str = "wa.metrics"
    dlq: str = "wa.webhooks.dlq"
    audit: str = "wa.audit"
    signals: str = "wa.channel.signals"
    funnel: str = "wa.funnel"
    redrive: str = "wa.webhooks.redrive"
    # The notifier's own topics (docs/notifier.md). Unset, they follow the alerts topic: before
    # they were settings here they were always named after it, and a deployment that renamed its
    # alerts topic must find its parked notifications and its dedup ledger again after an upgrade.
    alerts_parked: str = ""
    alerts_delivered: str = ""

    @model_validator(mode="after")
    def _notifier_topics_follow_the_alerts_topic(self) -> TopicNames:
        # Frozen model: set through object.__setattr__, once, while the instance is being built.
        if not self.alerts_parked:
            object.__setattr__(self, "alerts_parked", f"{self.alerts}.parked")
        if not self.alerts_delivered:
            object.__setattr__(self, "alerts_delivered", f"{self.alerts}.delivered")
        return self

    def prefixed(self, prefix: str) -> TopicNames:
        """The same names behind `prefix` (tests use one prefix per test)."""
        return TopicNames(**{name: prefix + value for name, value in self.model_dump().items()})


class KafkaSettings(BaseSettings):
    """Where the broker is and how the topics are laid out."""

    model_config = SettingsConfigDict(env_prefix="STATUSFLOW_", frozen=True, extra="ignore", populate_by_name=True)

    bootstrap_servers: str = Field(
        default="127.0.0.1:9092",
        validation_alias=AliasChoices("KAFKA_BOOTSTRAP_SERVERS", "STATUSFLOW_BOOTSTRAP_SERVERS"),
    )
    topics: TopicNames = Field(default_factory=TopicNames)
    event_loop: EventLoopKind = Field(
        default="uvloop", description="The process's asyncio loop: uvloop, or asyncio (the standard one)."
    )
    partitions: int = Field(default=4, ge=1, description="Partitions of every topic we create.")
    replication_factor: int = Field(default=1, ge=1)
    # The only topics that hold payloads as sent (phone numbers, message content): how long they
    # are kept is a privacy decision as much as a replay one. -1 keeps them forever.
    raw_retention_ms: int = Field(
        default=4 * 7 * 86_400_000, ge=-1, description="retention.ms of wa.webhooks.raw when it is created."
    )
    dlq_retention_ms: int = Field(
        default=4 * 7 * 86_400_000, ge=-1, description="retention.ms of wa.webhooks.dlq when it is created."
    )
