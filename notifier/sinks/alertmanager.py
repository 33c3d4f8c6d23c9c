"""Prometheus Alertmanager, v2 API. Alertmanager dedups by labels itself: posting an alert again
only refreshes it, so a redelivery after a crash is harmless here."""

from __future__ import annotations

import time

import aiohttp
import orjson

from notifier.alertmanager_mapping import postable_alerts
from notifier.grouping import Notification
from notifier.settings import AlertmanagerSinkConfig, NotifySettings
from notifier.sinks.http import post


class AlertmanagerSink:
    """POST /api/v2/alerts."""

    def __init__(self, config: AlertmanagerSinkConfig, settings: NotifySettings) -> None:
        self.name = config.name
        self._url = config.url.rstrip("/") + "/api/v2/alerts"
        self._message_ttl_ms = int((config.message_ttl_s or settings.alertmanager_message_ttl_s) * 1000)
        self._condition_ttl_ms = int((config.condition_ttl_s or settings.alertmanager_condition_ttl_s) * 1000)
        self._examples = settings.group_examples
        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=settings.timeout_s(config)))

    async def deliver(self, notification: Notification) -> None:
        """One attempt."""
        body = postable_alerts(
            notification,
            int(time.time() * 1000),
            message_ttl_ms=self._message_ttl_ms,
            condition_ttl_ms=self._condition_ttl_ms,
            examples=self._examples,
        )
        await post(self._session, self._url, orjson.dumps(body), {})

    async def close(self) -> None:
        """Close the HTTP session."""
        await self._session.close()
