"""Durability of accepted webhooks: Kafka's acknowledgement, or the local spool while Kafka is away.

The live path publishes to Kafka while the broker is known to be up; the first failure marks it
down and sends every later webhook straight to the spool (no caller waits for a dead broker's
deadline). A drainer task sends the spool to Kafka in order, acknowledges what Kafka acknowledged,
and marks the broker up again when that works.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

from receiver.errors import Rejected
from receiver.observability import ReceiverMetrics
from receiver.publisher import Publisher, PublishError
from receiver.spool import Spool, SpoolError

log = logging.getLogger(__name__)

RETRY_MIN_S = 0.2
RETRY_MAX_S = 5.0


class DurableLog:
    """Makes each envelope durable before the receiver answers 2xx."""

    def __init__(
        self,
        publisher: Publisher,
        spool: Spool | None,
        metrics: ReceiverMetrics,
        *,
        retry_after_s: int,
        drain_batch: int,
        reconnect: Callable[[], Awaitable[None]] | None = None,
        broker_up: bool = True,
    ) -> None:
        self._publisher = publisher
        self._spool = spool
        self._metrics = metrics
        self._retry_after_s = retry_after_s
        self._drain_batch = drain_batch
        self._reconnect = reconnect
        self.broker_up = broker_up
        metrics.broker_up.set(1 if broker_up else 0)

    def ready(self) -> bool:
        """Ready to accept: the broker is up or the spool can take records."""
        return self.broker_up or (self._spool is not None and self._spool.usable)

    def _mark(self, up: bool, reason: object) -> None:
        if up != self.broker_up:
            log.warning("broker %s: %s", "back" if up else "unreachable, spooling", reason)
        self.broker_up = up
        self._metrics.broker_up.set(1 if up else 0)

    async def put(self, topic: str, key: bytes, value: bytes) -> str:
        """Return where the record is durable ('kafka' or 'spool'); Rejected(503) when nowhere."""
        started = time.perf_counter()
        if self.broker_up or self._spool is None:
            try:
                await self._publisher.publish(topic, key, value)
            except PublishError as exc:
                self._mark(up=False, reason=exc)
                if self._spool is None:
                    raise
            else:
                self._mark(up=True, reason="a publish was acknowledged")
                self._metrics.publish_latency.labels("kafka").observe(time.perf_counter() - started)
                return "kafka"
        try:
            await self._spool.append(topic, key, value)
        except SpoolError as exc:
            log.error("webhook %s refused, spool cannot take it: %s", key.decode(errors="replace"), exc)  # noqa: TRY400
            raise Rejected(
                503, "the event log and the spool are unavailable; retry later", retry_after=self._retry_after_s
            ) from exc
        self._metrics.publish_latency.labels("spool").observe(time.perf_counter() - started)
        self._metrics.spooled.inc()
        return "spool"

    async def probe(self) -> bool:
        """Readiness: when nothing can take webhooks, try reconnecting to the broker once."""
        if not self.ready() and self._reconnect is not None:
            try:
                await self._reconnect()
            except PublishError as exc:
                log.info("broker still unreachable: %s", exc)
            else:
                self._mark(up=True, reason="reconnected")
        return self.ready()

    async def publish_best_effort(self, topic: str, key: bytes, value: bytes) -> bool:
        """For records that are not acknowledged state (audits of refusals): never wait for a dead broker."""
        if not self.broker_up:
            return False
        try:
            await self._publisher.publish(topic, key, value)
        except PublishError as exc:
            self._mark(up=False, reason=exc)
            return False
        return True

    async def drain_forever(self) -> None:
        """Send spooled records to Kafka in order, forgetting each batch only after Kafka acknowledged it."""
        spool = self._spool
        if spool is None:
            return
        delay = RETRY_MIN_S
        while True:
            await spool.wait_nonempty()
            if await self._drain_once(spool):
                delay = RETRY_MIN_S
                continue
            # Retry pacing while the broker is away, not a synchronisation.
            await asyncio.sleep(delay)
            delay = min(delay * 2, RETRY_MAX_S)

    async def _drain_once(self, spool: Spool) -> bool:
        try:
            if not self.broker_up and self._reconnect is not None:
                await self._reconnect()
            batch = await spool.read_batch(self._drain_batch)
            # Sends start in spool order; the idempotent producer keeps that order per partition.
            await asyncio.gather(*(self._publisher.publish(r.topic, r.key, r.value) for r in batch))
        except PublishError as exc:
            self._mark(up=False, reason=exc)
            return False
        except SpoolError as exc:
            log.error("spool %s cannot be read: %s", spool.directory, exc)  # noqa: TRY400
            return False
        await spool.ack(batch)
        self._metrics.drained.inc(len(batch))
        self._mark(up=True, reason=f"drained {len(batch)} spooled records")
        return True
