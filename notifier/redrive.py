"""Redrive: the notifier reads its own parking topic and delivers each parked notification once
its sink takes work again. Parking offsets are committed only after delivery, so a restart
re-reads what is still parked (and the ledger drops what was delivered meanwhile)."""

from __future__ import annotations

import asyncio
import collections
import logging

from aiokafka import AIOKafkaConsumer, TopicPartition

from notifier import parking
from notifier.delivery import Lane, attempt
from notifier.grouping import Notification
from notifier.ledger import Ledger
from notifier.metrics import NotifierMetrics
from notifier.offsets import OffsetTracker
from notifier.settings import NotifySettings
from notifier.sinks.base import SinkError

log = logging.getLogger(__name__)

Parked = tuple[TopicPartition, int, Notification]


class Redriver:
    """Holds parked notifications per sink and tries the oldest every redrive interval."""

    def __init__(
        self, settings: NotifySettings, lanes: dict[str, Lane], ledger: Ledger, metrics: NotifierMetrics
    ) -> None:
        self._settings = settings
        self._lanes = lanes
        self._ledger = ledger
        self._metrics = metrics
        self._waiting: dict[str, collections.deque[Parked]] = {name: collections.deque() for name in lanes}
        self._arrived = {name: asyncio.Event() for name in lanes}
        self._tracker = OffsetTracker()

    async def run(self) -> None:
        """Read the parking topic and redrive, until cancelled."""
        consumer = AIOKafkaConsumer(
            self._settings.parked(),
            bootstrap_servers=self._settings.kafka.bootstrap_servers,
            group_id=f"{self._settings.group_id}.parked",
            enable_auto_commit=False,
            auto_offset_reset="earliest",
        )
        await consumer.start()
        tasks = [asyncio.create_task(self._redrive(name), name=f"redrive-{name}") for name in self._lanes]
        try:
            while True:
                batches = await consumer.getmany(timeout_ms=500)
                for tp, messages in batches.items():
                    for message in messages:
                        self._take(tp, message.offset, message.value)
                offsets = self._tracker.committable()
                if offsets:
                    await consumer.commit(offsets)
                    self._tracker.committed(offsets)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await consumer.stop()

    def _take(self, tp: TopicPartition, offset: int, value: bytes | None) -> None:
        try:
            notification = parking.decode(value or b"")
        except ValueError as exc:
            log.error("parking record %s@%d dropped: %s", tp, offset, exc)  # noqa: TRY400 - the reason is the message
            self._tracker.seen(tp, offset, 0)
            return
        if notification.sink not in self._lanes:
            log.error("parked for sink %s, which is not configured now: dropped", notification.sink)
            self._tracker.seen(tp, offset, 0)
            return
        self._tracker.seen(tp, offset, 1)
        self._waiting[notification.sink].append((tp, offset, notification))
        self._metrics.parked.labels(notification.sink).set(len(self._waiting[notification.sink]))
        self._arrived[notification.sink].set()

    async def _redrive(self, sink: str) -> None:
        lane, waiting = self._lanes[sink], self._waiting[sink]
        while True:
            if not waiting:
                self._arrived[sink].clear()
                await self._arrived[sink].wait()
                continue
            tp, offset, parked = waiting[0]
            fresh = self._ledger.delivered.fresh(parked)
            try:
                if fresh is not None:
                    await attempt(lane.sink, fresh, self._metrics)
            except SinkError as exc:
                log.info("redrive %s: still down (%s); next try in %.0fs", sink, exc, self._settings.redrive_interval_s)
                await asyncio.sleep(self._settings.redrive_interval_s)  # the sink gives no signal of its return
                continue
            if fresh is not None:
                await self._ledger.record(fresh)
                self._metrics.notifications.labels(sink, "redriven").inc()
            waiting.popleft()
            self._tracker.settle(tp, offset)
            self._metrics.parked.labels(sink).set(len(waiting))
            if not waiting:
                lane.mark(down=False)
