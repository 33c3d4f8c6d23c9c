"""The consumer loop: wa.alerts in the notifier's group -> routes -> groups -> sink lanes.

Offsets are committed only below the oldest record whose notifications are not yet delivered
or parked (offsets.py), so a crash at any point re-reads what was not settled; the ledger
(dedup.py, ledger.py) drops what was already told.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Hashable
from typing import Any

from aiohttp import web
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import NewTopic
from aiokafka.errors import CommitFailedError, KafkaError
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from notifier import ledger as ledger_topic
from notifier.alerts import Alert, tenant_of
from notifier.delivery import Lane, Parker
from notifier.grouping import Grouper, Notification
from notifier.ledger import Ledger
from notifier.metrics import NotifierMetrics
from notifier.offsets import OffsetTracker
from notifier.redrive import Redriver
from notifier.routing import sinks_for
from notifier.settings import AlertmanagerSinkConfig, NotifySettings, SinkConfig, WebhookSinkConfig
from notifier.sinks.alertmanager import AlertmanagerSink
from notifier.sinks.base import Sink
from notifier.sinks.email import EmailSink
from notifier.sinks.webhook import WebhookSink
from schemas.codec import SchemaError, codec
from schemas.topics import TOPIC_PARTITIONS, ensure_topics

log = logging.getLogger(__name__)


def build_sinks(settings: NotifySettings) -> dict[str, Sink]:
    """The configured sinks by name."""
    return {config.name: make_sink(config, settings) for config in settings.sink_configs()}


def make_sink(config: SinkConfig, settings: NotifySettings) -> Sink:
    """The sink a configuration describes."""
    if isinstance(config, WebhookSinkConfig):
        return WebhookSink(config, settings)
    if isinstance(config, AlertmanagerSinkConfig):
        return AlertmanagerSink(config, settings)
    return EmailSink(config, settings)


def own_topics(settings: NotifySettings) -> list[NewTopic]:
    """The parking topic and the compacted ledger, kept as long as the ledger retention says
    (the contract's layout otherwise: schemas/topics.py)."""
    kafka = settings.kafka
    return [
        NewTopic(
            name=settings.parked(),
            num_partitions=TOPIC_PARTITIONS["alerts_parked"],
            replication_factor=kafka.replication_factor,
            topic_configs={"cleanup.policy": "delete", "retention.ms": str(settings.ledger_retention_ms)},
        ),
        NewTopic(
            name=settings.delivered(),
            num_partitions=kafka.partitions,
            replication_factor=kafka.replication_factor,
            topic_configs={"cleanup.policy": "compact,delete", "retention.ms": str(settings.ledger_retention_ms)},
        ),
    ]


class Notifier:
    """The running notifier: its consumer, lanes, redriver and GET /metrics, /healthz."""

    def __init__(self, settings: NotifySettings, sinks: dict[str, Sink] | None = None) -> None:
        self.settings = settings
        self.metrics = NotifierMetrics.create()
        self.sinks = sinks if sinks is not None else build_sinks(settings)
        self.tracker = OffsetTracker()
        self.grouper = Grouper(int(settings.group_interval_s * 1000))
        self.ready = asyncio.Event()
        self.lanes: dict[str, Lane] = {}
        self._codec = codec("alert")

    async def run(self, stop: asyncio.Event) -> None:
        """Until `stop` is set."""
        s = self.settings
        if not self.sinks:
            log.warning(
                "no sink configured (STATUSFLOW_NOTIFY_WEBHOOK_URL, _ALERTMANAGER_URL, _SMTP_HOST or sinks in "
                "STATUSFLOW_NOTIFY_FILE): idle"
            )
        await ensure_topics(s.kafka, extra=own_topics(s))
        producer = AIOKafkaProducer(
            bootstrap_servers=s.kafka.bootstrap_servers, acks="all", enable_idempotence=True, linger_ms=5
        )
        await producer.start()
        consumer = AIOKafkaConsumer(
            s.kafka.topics.alerts,
            bootstrap_servers=s.kafka.bootstrap_servers,
            group_id=s.group_id,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
        )
        tasks: list[asyncio.Task[None]] = []
        try:
            ledger = Ledger(producer, s.delivered(), await ledger_topic.load(s.kafka.bootstrap_servers, s.delivered()))
            parker = Parker(producer, s.parked())
            configs = {config.name: config for config in s.sink_configs()}
            self.lanes = {
                name: Lane(
                    sink,
                    retry=s.retry_policy(configs.get(name)),
                    ledger=ledger,
                    parker=parker,
                    metrics=self.metrics,
                    settled=self._settled,
                )
                for name, sink in self.sinks.items()
            }
            tasks = [asyncio.create_task(lane.run(), name=f"lane-{name}") for name, lane in self.lanes.items()]
            tasks.append(asyncio.create_task(Redriver(s, self.lanes, ledger, self.metrics).run(), name="redrive"))
            await consumer.start()
            self.ready.set()
            log.info("notifier: %s -> %s (group %s)", s.kafka.topics.alerts, ", ".join(self.sinks), s.group_id)
            while not stop.is_set():
                await self._poll(consumer, ledger)
                failed = [task for task in tasks if task.done()]
                if failed:
                    failed[0].result()  # a lane or the redriver died: fail loudly rather than stall
            await self._drain(consumer)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await consumer.stop()
            await producer.stop()
            for sink in self.sinks.values():
                await sink.close()

    async def _poll(self, consumer: AIOKafkaConsumer, ledger: Ledger) -> None:
        now_ms = int(time.time() * 1000)
        due_ms = self.grouper.next_due_ms()
        timeout_ms = 500 if due_ms is None else max(0, min(500, due_ms - now_ms))
        batches = await consumer.getmany(timeout_ms=timeout_ms, max_records=500)
        now_ms = int(time.time() * 1000)
        for tp, messages in batches.items():
            for message in messages:
                self._take(tp, message.offset, message.value, ledger, now_ms)
        for notification in self.grouper.due(now_ms):
            self._submit(notification)
        await self._commit(consumer)

    def _take(self, tp: TopicPartition, offset: int, value: bytes | None, ledger: Ledger, now_ms: int) -> None:
        try:
            record: dict[str, Any] = self._codec.decode(value or b"")
        except SchemaError as exc:
            log.error("alert %s@%d undecodable, skipped: %s", tp, offset, exc)  # noqa: TRY400 - the reason is the message
            self.metrics.alerts.labels("undecodable").inc()
            self.tracker.seen(tp, offset, 0)
            return
        alert = Alert.from_record(record, tenant_of(record.get("channel"), self.settings.tenants))
        routed = sinks_for(alert, self.settings.routes, self.settings.default_route())
        fresh = [sink for sink in routed if sink in self.lanes and not ledger.delivered.knows(sink, alert.alert_id)]
        self.metrics.alerts.labels("routed" if fresh else ("duplicate" if routed else "unrouted")).inc()
        self.tracker.seen(tp, offset, len(fresh))
        for sink in fresh:
            notification = self.grouper.add(sink, alert, (tp, offset), now_ms)
            if notification is not None:
                self._submit(notification)

    def _submit(self, notification: Notification) -> None:
        self.lanes[notification.sink].queue.put_nowait(notification)

    def _settled(self, notification: Notification) -> None:
        for ref in notification.refs:
            tp, offset = _ref(ref)
            self.tracker.settle(tp, offset)

    async def _commit(self, consumer: AIOKafkaConsumer) -> None:
        offsets = self.tracker.committable()
        self.metrics.unsettled.set(self.tracker.waiting())
        if not offsets:
            return
        try:
            await consumer.commit(offsets)
        except (CommitFailedError, KafkaError) as exc:
            log.warning("commit failed (retried with the next batch): %s", exc)
            return
        self.tracker.committed(offsets)

    async def _drain(self, consumer: AIOKafkaConsumer, timeout_s: float = 5.0) -> None:
        """On stop: let notifications in hand finish briefly, commit what they settled. Open
        groups are not flushed: their records are re-read (and re-grouped) at the next start."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.gather(*(lane.queue.join() for lane in self.lanes.values())), timeout_s)
        await self._commit(consumer)

    def health(self) -> dict[str, Any]:
        """GET /healthz body."""
        return {
            "ready": self.ready.is_set(),
            "sinks": {name: ("down" if lane.down else "up") for name, lane in self.lanes.items()},
            "unsettled_records": self.tracker.waiting(),
        }


def _ref(ref: Hashable) -> tuple[TopicPartition, int]:
    assert isinstance(ref, tuple)
    return ref[0], ref[1]


def web_app(notifier: Notifier) -> web.Application:
    """GET /metrics (Prometheus text) and GET /healthz (200 once consuming, else 503)."""

    async def metrics(_: web.Request) -> web.Response:
        return web.Response(
            body=generate_latest(notifier.metrics.registry), headers={"Content-Type": CONTENT_TYPE_LATEST}
        )

    async def healthz(_: web.Request) -> web.Response:
        body = notifier.health()
        return web.json_response(body, status=200 if body["ready"] else 503)

    app = web.Application()
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/healthz", healthz)
    return app


async def serve(settings: NotifySettings, stop: asyncio.Event, sinks: dict[str, Sink] | None = None) -> None:
    """The notifier and its HTTP endpoints, until `stop` is set."""
    notifier = Notifier(settings, sinks)
    runner = web.AppRunner(web_app(notifier))
    await runner.setup()
    site = web.TCPSite(runner, settings.host, settings.port)
    await site.start()
    try:
        await notifier.run(stop)
    finally:
        with contextlib.suppress(Exception):
            await runner.cleanup()
