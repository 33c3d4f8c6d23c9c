"""Per-sink lanes: retries with backoff, then parking; a sink that stays down holds up only its lane.

There is one lane per named sink (two webhooks are two lanes), each with its own queue, its own
retry policy and its own down state, and parking records keyed by the sink's name. A lane that
had to park is "down": it parks what comes next at once (no retries) until the redriver
(redrive.py) delivers parked work to the sink again.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

from aiokafka import AIOKafkaProducer

from notifier import parking
from notifier.grouping import Notification
from notifier.ledger import Ledger
from notifier.metrics import NotifierMetrics
from notifier.settings import RetryPolicy
from notifier.sinks.base import Sink, SinkError

log = logging.getLogger(__name__)

Settled = Callable[[Notification], None]


def backoff_s(attempt: int, base_s: float, max_s: float) -> float:
    """Delay before retry `attempt` (1 = the first retry): doubling, capped."""
    return float(min(max_s, base_s * 2 ** (attempt - 1)))


async def attempt(sink: Sink, notification: Notification, metrics: NotifierMetrics) -> None:
    """One delivery; counts the failure and re-raises it."""
    started = time.monotonic()
    try:
        await sink.deliver(notification)
    except SinkError:
        metrics.failures.labels(sink.name).inc()
        raise
    metrics.latency.labels(sink.name).observe(time.monotonic() - started)


class Parker:
    """Writes undeliverable notifications to the parking topic, retrying until the broker takes them."""

    def __init__(self, producer: AIOKafkaProducer, topic: str) -> None:
        self._producer = producer
        self._topic = topic

    async def park(self, notification: Notification, reason: str) -> None:
        """Returns once the parking record is durable."""
        delay = 0.5
        while True:
            try:
                await self._producer.send_and_wait(
                    self._topic,
                    key=notification.sink.encode(),
                    value=parking.encode(notification, int(time.time() * 1000), reason),
                )
            except Exception:  # any broker error: the notification must not be lost
                log.exception("parking %s failed; retrying", notification.notification_id)
                await asyncio.sleep(delay)  # backoff: nothing to wait on but time
                delay = min(delay * 2, 10.0)
            else:
                return


class Lane:
    """One sink's queue and its worker task."""

    def __init__(
        self,
        sink: Sink,
        *,
        retry: RetryPolicy,
        ledger: Ledger,
        parker: Parker,
        metrics: NotifierMetrics,
        settled: Settled,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.sink = sink
        self.queue: asyncio.Queue[Notification] = asyncio.Queue()
        self.down = False
        self._retry = retry
        self._ledger = ledger
        self._parker = parker
        self._metrics = metrics
        self._settled = settled
        self._sleep = sleep
        self._busy = False
        metrics.sink_up.labels(sink.name).set(1)

    @property
    def idle(self) -> bool:
        """Nothing queued and nothing in hand."""
        return self.queue.empty() and not self._busy

    def mark(self, *, down: bool) -> None:
        """The sink went down (work parks at once) or came back."""
        if down != self.down:
            log.warning("sink %s is %s", self.sink.name, "down: parking its notifications" if down else "back")
        self.down = down
        self._metrics.sink_up.labels(self.sink.name).set(0 if down else 1)

    async def run(self) -> None:
        """Forever: deliver or park each queued notification, then settle it."""
        while True:
            notification = await self.queue.get()
            self._busy = True
            try:
                await self._handle(notification)
            finally:
                self._busy = False
                self._settled(notification)
                self.queue.task_done()

    async def _handle(self, notification: Notification) -> None:
        fresh = self._ledger.delivered.fresh(notification)
        if fresh is None:
            return
        if self.down:
            await self._park(fresh, "sink down")
            return
        retry = self._retry
        for number in range(1, retry.attempts + 1):
            try:
                await attempt(self.sink, fresh, self._metrics)
            except SinkError as exc:
                log.warning("%s: attempt %d of %s failed: %s", self.sink.name, number, fresh.notification_id, exc)
                if number == retry.attempts:
                    self.mark(down=True)
                    await self._park(fresh, str(exc))
                    return
                await self._sleep(backoff_s(number, retry.base_s, retry.max_s))
            else:
                await self._ledger.record(fresh)
                self._metrics.notifications.labels(self.sink.name, "delivered").inc()
                return

    async def _park(self, notification: Notification, reason: str) -> None:
        await self._parker.park(notification, reason)
        self._metrics.notifications.labels(self.sink.name, "parked").inc()
