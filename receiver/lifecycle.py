"""What the receiver opens with the app and closes on shutdown: producer, spool, drainer."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable

from aiohttp import web
from aiokafka.errors import KafkaError

from receiver.context import DURABLE, METRICS, SETTINGS
from receiver.durable import DurableLog
from receiver.observability import ReceiverMetrics
from receiver.publisher import KafkaPublisher, Publisher, PublishError
from receiver.settings import ReceiverSettings
from receiver.spool import Spool
from schemas.topics import ensure_topics

log = logging.getLogger(__name__)

CleanupContext = Callable[[web.Application], AsyncIterator[None]]


def _watch_spool(spool: Spool, metrics: ReceiverMetrics) -> None:
    metrics.spool_records.set_function(lambda: spool.pending_records)
    metrics.spool_bytes.set_function(lambda: spool.total_bytes)
    metrics.spool_oldest_age.set_function(
        lambda: 0.0 if spool.oldest_ms is None else max(0.0, time.time() - spool.oldest_ms / 1000)
    )

    def committed(records: int, size: int, seconds: float) -> None:
        metrics.spool_commit_seconds.observe(seconds)
        metrics.spool_commit_records.observe(records)

    spool.on_commit = committed


def _reconnect(kafka: KafkaPublisher, settings: ReceiverSettings) -> Callable[[], Awaitable[None]]:
    async def reconnect() -> None:
        await kafka.restart()
        try:
            # The broker may be back without our topics (a new cluster, or it was down at start-up).
            await ensure_topics(settings)
        except (KafkaError, OSError) as exc:
            msg = f"topics not ensured: {exc!r}"
            raise PublishError(msg) from exc

    return reconnect


def durability(injected: Publisher | None) -> CleanupContext:
    """The cleanup context that owns the producer (unless one is injected), the spool and the drainer."""

    async def context(app: web.Application) -> AsyncIterator[None]:
        settings, metrics = app[SETTINGS], app[METRICS]
        spool = None
        if settings.spool_enabled:
            # Opened first: a spool that cannot be opened stops the start before any connection is made.
            spool = await Spool.open(
                settings.spool_dir, max_bytes=settings.spool_max_bytes, segment_bytes=settings.spool_segment_bytes
            )
            _watch_spool(spool, metrics)
            log.info("spool at %s (%s records waiting)", spool.directory, spool.pending_records)
        kafka: KafkaPublisher | None = None
        publisher: Publisher
        if injected is None:
            kafka = KafkaPublisher(settings.bootstrap_servers, settings.publish_timeout_s, settings.publish_linger_ms)
            publisher = kafka
            try:
                await kafka.start()
            except PublishError as exc:
                log.warning("starting without the broker, webhooks go to the spool: %s", exc)
        else:
            publisher = injected
        durable = DurableLog(
            publisher,
            spool,
            metrics,
            retry_after_s=settings.retry_after_s,
            drain_batch=settings.drain_batch,
            reconnect=_reconnect(kafka, settings) if kafka is not None else None,
            broker_up=kafka.connected if kafka is not None else True,
        )
        app[DURABLE] = durable
        drainer = asyncio.create_task(durable.drain_forever(), name="spool-drainer")
        try:
            yield
        finally:
            # In-flight requests are done (aiohttp waited for them); stop draining, then flush.
            drainer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await drainer
            if spool is not None:
                await spool.close()
            if kafka is not None:
                await kafka.stop()

    return context
