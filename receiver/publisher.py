"""Publishing raw envelopes to Kafka, acknowledged by every in-sync replica."""

from __future__ import annotations

import asyncio
import logging
from typing import Protocol

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from schemas.errors import StatusflowError

log = logging.getLogger(__name__)


class PublishError(StatusflowError):
    """The broker did not acknowledge a record before the deadline."""

    retriable = True


class Publisher(Protocol):
    """Something that makes a record durable or raises PublishError."""

    async def publish(self, topic: str, key: bytes, value: bytes) -> None:
        """Return only once the record is durable."""
        ...


class KafkaPublisher:
    """An idempotent acks=all producer; concurrent publishes share the producer's batches."""

    def __init__(self, bootstrap_servers: str, timeout_s: float) -> None:
        self._timeout_s = timeout_s
        self._producer = AIOKafkaProducer(
            bootstrap_servers=bootstrap_servers,
            acks="all",
            enable_idempotence=True,
            linger_ms=2,
            request_timeout_ms=int(timeout_s * 1000),
        )

    async def start(self) -> None:
        """Connect to the broker."""
        await self._producer.start()

    async def stop(self) -> None:
        """Flush what is pending and disconnect."""
        await self._producer.stop()

    async def publish(self, topic: str, key: bytes, value: bytes) -> None:
        """Send and wait for the broker's acknowledgement, within the deadline."""
        try:
            await asyncio.wait_for(self._producer.send_and_wait(topic, value=value, key=key), self._timeout_s)
        except (KafkaError, TimeoutError) as exc:
            msg = f"broker did not acknowledge {topic} record: {exc!r}"
            raise PublishError(msg) from exc
