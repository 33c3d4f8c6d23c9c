"""Publishing raw envelopes to Kafka, acknowledged by every in-sync replica."""

from __future__ import annotations

import asyncio
import contextlib
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
    """An idempotent acks=all producer; concurrent publishes share the producer's batches.

    A broker that is down at start-up or goes away is not fatal: publishing raises PublishError
    (the receiver spools), and `restart` opens a fresh producer once the broker is back, so no
    idempotence sequence from the outage is carried over.
    """

    def __init__(self, bootstrap_servers: str, timeout_s: float, linger_ms: int = 5) -> None:
        self._bootstrap_servers = bootstrap_servers
        self._timeout_s = timeout_s
        self._linger_ms = linger_ms
        self._producer: AIOKafkaProducer | None = None

    def _new_producer(self) -> AIOKafkaProducer:
        return AIOKafkaProducer(
            bootstrap_servers=self._bootstrap_servers,
            acks="all",
            enable_idempotence=True,
            linger_ms=self._linger_ms,
            request_timeout_ms=int(self._timeout_s * 1000),
        )

    @property
    def connected(self) -> bool:
        """True once a producer started (the broker answered)."""
        return self._producer is not None

    async def start(self) -> None:
        """Connect to the broker; PublishError if it cannot be reached within the deadline."""
        producer = self._new_producer()
        try:
            await asyncio.wait_for(producer.start(), self._timeout_s)
        except (KafkaError, TimeoutError, OSError) as exc:
            await self._close(producer)
            msg = f"broker {self._bootstrap_servers} unreachable: {exc!r}"
            raise PublishError(msg) from exc
        self._producer = producer

    async def restart(self) -> None:
        """Drop the current producer (if any) and connect a fresh one."""
        await self.stop()
        await self.start()

    async def stop(self) -> None:
        """Flush what is pending (within the deadline) and disconnect."""
        producer, self._producer = self._producer, None
        if producer is not None:
            await self._close(producer)

    async def _close(self, producer: AIOKafkaProducer) -> None:
        try:
            await asyncio.wait_for(producer.stop(), self._timeout_s)
        except (KafkaError, TimeoutError, OSError) as exc:
            # A dead broker cannot take the flush: drop the connections rather than leak them.
            # What was not acknowledged was not answered 2xx from Kafka; it is in the spool.
            log.warning("producer did not flush and stop cleanly: %r", exc)
            with contextlib.suppress(KafkaError, OSError):
                await producer.client.close()

    async def publish(self, topic: str, key: bytes, value: bytes) -> None:
        """Send and wait for the broker's acknowledgement, within the deadline."""
        if self._producer is None:
            raise PublishError("no connection to the broker")
        try:
            # asyncio.timeout, not wait_for: no extra task per request on the hot path.
            async with asyncio.timeout(self._timeout_s):
                await self._producer.send_and_wait(topic, value=value, key=key)
        except (KafkaError, TimeoutError) as exc:
            msg = f"broker did not acknowledge {topic} record: {exc!r}"
            raise PublishError(msg) from exc
