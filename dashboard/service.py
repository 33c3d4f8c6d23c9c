"""The dashboard's I/O: reads the public topics, measures consumer lag, scrapes the receivers.

Everything it learns goes through the pure folds of dashboard/fold.py, dashboard/lag.py and
dashboard/requests.py; this module only moves bytes and keeps the latest snapshot for the
page's requests and its server-sent events.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from typing import Any

import aiohttp
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError

from dashboard.fold import DashboardState, apply_alert, apply_dead_letter, apply_funnel, apply_metric, snapshot
from dashboard.lag import group_lag, lag_view
from dashboard.observability import DashboardMetrics
from dashboard.requests import RequestHistory, Scrape, request_counts
from dashboard.scoped import Visible, scoped_snapshot
from dashboard.settings import DashboardSettings
from schemas.codec import SchemaError, codec

log = logging.getLogger(__name__)

Fold = Callable[[DashboardState, dict[str, Any]], None]


async def partitions(admin: AIOKafkaAdminClient, topics: set[str]) -> dict[str, list[int]]:
    """The partitions of those of `topics` that exist. All topics are described, never only ours:
    a metadata request naming a missing topic creates it on a broker that auto-creates topics."""
    found: dict[str, list[int]] = {}
    for described in await admin.describe_topics(None):
        if described["topic"] in topics and described["error_code"] == 0 and described["partitions"]:
            found[described["topic"]] = sorted(p["partition"] for p in described["partitions"])
    return found


def now_ms() -> int:
    """Wall-clock epoch milliseconds."""
    return int(time.time() * 1000)


class DashboardService:
    """Runs the feeds and pollers; `latest` is the current snapshot, `version` counts them."""

    def __init__(self, settings: DashboardSettings, metrics: DashboardMetrics) -> None:
        self._settings = settings
        self._metrics = metrics
        self._state = DashboardState(
            windows_per_scope=settings.dashboard_windows_per_scope, alerts_kept=settings.dashboard_alerts_kept
        )
        self._requests = RequestHistory()
        self._lag: dict[str, Any] = lag_view([], settings.lag_groups(), error="not measured yet", at=0)
        self._tasks: list[asyncio.Task[None]] = []
        self._changed = asyncio.Condition()
        self.version = 0
        self.latest: dict[str, Any] = self._build()
        self._scoped: dict[Visible, dict[str, Any]] = {}  # of self._scoped_version: one per tenant at most
        self._scoped_version = 0
        self.undecodable = 0

    async def start(self) -> None:
        """Start reading and polling in the background."""
        self._tasks = [
            asyncio.create_task(self._feed(), name="dashboard-feed"),
            asyncio.create_task(self._poll(), name="dashboard-poll"),
        ]

    async def stop(self) -> None:
        """Cancel the background tasks and wake every waiting stream so it can end."""
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        async with self._changed:
            self.version += 1
            self._changed.notify_all()

    @property
    def running(self) -> bool:
        """True until stop()."""
        return bool(self._tasks)

    async def wait_newer(self, version: int, within: float) -> int:
        """The current version once it is newer than `version`, or after `within` seconds."""
        async with self._changed:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait_for(lambda: self.version > version), within)
            return self.version

    def latest_for(self, visible: Visible | None) -> dict[str, Any]:
        """The current snapshot restricted to the (provider, channel) pairs in `visible` (a
        tenant's page; None: everything, the operator's and development mode's). Built at most
        once per refresh and tenant, when a page asks for it."""
        if visible is None:
            return self.latest
        if self._scoped_version != self.version:
            self._scoped, self._scoped_version = {}, self.version
        document = self._scoped.get(visible)
        if document is None:
            document = self._scoped[visible] = scoped_snapshot(
                self._state,
                visible,
                lag=self._lag,
                requests=self._requests,
                now_ms=self.latest["generated_at"],
                series_points=self._settings.dashboard_series_points,
            )
        return document

    def _build(self) -> dict[str, Any]:
        return snapshot(
            self._state,
            lag=self._lag,
            receiver=self._requests.view(),
            now_ms=now_ms(),
            series_points=self._settings.dashboard_series_points,
        )

    async def _publish(self) -> None:
        self.latest = self._build()
        self._metrics.update(self.latest, now_ms())
        async with self._changed:
            self.version += 1
            self._changed.notify_all()

    # --- topics -------------------------------------------------------------------------

    async def _feed(self) -> None:
        s = self._settings
        folds: dict[str, tuple[str, Fold]] = {
            s.topics.funnel: ("cohort_funnel", apply_funnel),
            s.topics.metrics: ("metric_window", apply_metric),
            s.topics.alerts: ("alert", apply_alert),
            s.topics.dlq: ("dead_letter", apply_dead_letter),
        }
        while True:
            admin = AIOKafkaAdminClient(bootstrap_servers=s.bootstrap_servers)
            consumer = AIOKafkaConsumer(bootstrap_servers=s.bootstrap_servers, group_id=None, enable_auto_commit=False)
            try:
                await admin.start()
                await consumer.start()
                await self._assign(admin, consumer, set(folds))
                await admin.close()
                await self._read(consumer, folds)
            except (KafkaError, OSError) as exc:
                log.warning("reading the topics failed, starting over: %r", exc)
            finally:
                await consumer.stop()
                await admin.close()
            await asyncio.sleep(s.dashboard_refresh_s)  # back-off before reconnecting

    async def _assign(self, admin: AIOKafkaAdminClient, consumer: AIOKafkaConsumer, topics: set[str]) -> None:
        """All partitions of the topics, from the first record produced within the lookback."""
        found = await partitions(admin, topics)
        while set(found) != topics:
            log.info("waiting for topics %s to exist", sorted(topics - set(found)))
            await asyncio.sleep(self._settings.dashboard_refresh_s)  # the worker or receiver creates them
            found = await partitions(admin, topics)
        assigned = [TopicPartition(topic, p) for topic, numbers in sorted(found.items()) for p in numbers]
        consumer.assign(assigned)
        since = now_ms() - self._settings.dashboard_lookback_s * 1000
        # End offsets first, as numbers: a partition with nothing that recent starts at the end
        # it had before the time lookup, so a record produced in between is still read (a lazy
        # seek_to_end would resolve later and skip it).
        ends = await consumer.end_offsets(assigned)
        offsets = await consumer.offsets_for_times(dict.fromkeys(assigned, since))
        for tp, found_offset in offsets.items():
            consumer.seek(tp, ends[tp] if found_offset is None else found_offset.offset)

    async def _read(self, consumer: AIOKafkaConsumer, folds: dict[str, tuple[str, Fold]]) -> None:
        codecs = {topic: codec(name) for topic, (name, _) in folds.items()}
        while True:
            batches = await consumer.getmany(timeout_ms=1000, max_records=5000)
            for tp, records in batches.items():
                fold = folds[tp.topic][1]
                for record in records:
                    if record.value is None:
                        continue
                    try:
                        value = codecs[tp.topic].decode(record.value)
                    except SchemaError as exc:
                        self.undecodable += 1
                        log.warning("undecodable record %s[%s]@%s: %s", tp.topic, tp.partition, record.offset, exc)
                        continue
                    fold(self._state, value)

    # --- lag and receivers ----------------------------------------------------------------

    async def _poll(self) -> None:
        s = self._settings
        timeout = aiohttp.ClientTimeout(total=max(s.dashboard_refresh_s, 2.0))
        async with aiohttp.ClientSession(timeout=timeout) as http:
            while True:
                admin = AIOKafkaAdminClient(bootstrap_servers=s.bootstrap_servers)
                consumer = AIOKafkaConsumer(bootstrap_servers=s.bootstrap_servers, group_id=None)
                try:
                    await admin.start()
                    await consumer.start()
                    while True:
                        await asyncio.gather(self._measure_lag(admin, consumer), self._scrape(http))
                        await self._publish()
                        await asyncio.sleep(s.dashboard_refresh_s)  # the refresh period of lag, receivers and page
                except (KafkaError, OSError) as exc:
                    log.warning("consumer lag not measured: %r", exc)
                    self._lag = {**self._lag, "error": f"{type(exc).__name__}: {exc}"}
                    await self._scrape(http)
                    await self._publish()
                finally:
                    await consumer.stop()
                    await admin.close()
                await asyncio.sleep(s.dashboard_refresh_s)  # back-off before reconnecting

    async def _measure_lag(self, admin: AIOKafkaAdminClient, consumer: AIOKafkaConsumer) -> None:
        groups = self._settings.lag_groups()
        rows: list[dict[str, Any]] = []
        for group in groups:
            offsets = await admin.list_consumer_group_offsets(group)
            committed = {(tp.topic, tp.partition): meta.offset for tp, meta in offsets.items() if meta.offset >= 0}
            found = await partitions(admin, {t for t, _ in committed})
            tps = [TopicPartition(topic, p) for topic, numbers in sorted(found.items()) for p in numbers]
            ends = await consumer.end_offsets(tps) if tps else {}
            begins = await consumer.beginning_offsets(tps) if tps else {}
            rows += group_lag(
                group,
                {(tp.topic, tp.partition): o for tp, o in ends.items()},
                committed,
                {(tp.topic, tp.partition): o for tp, o in begins.items()},
            )
        self._lag = lag_view(rows, groups, error=None, at=now_ms())

    async def _scrape(self, http: aiohttp.ClientSession) -> None:
        counts: dict[str, Any] = {}
        for url in self._settings.receiver_metrics_urls():
            try:
                async with http.get(url) as response:
                    response.raise_for_status()
                    counts[url] = request_counts(await response.text())
            except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
                log.info("receiver metrics %s not read: %r", url, exc)
                counts[url] = None
        self._requests.add(Scrape(at=time.monotonic(), counts=counts))
