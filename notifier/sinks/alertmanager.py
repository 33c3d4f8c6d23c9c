"""Prometheus Alertmanager, v2 API. Alertmanager dedups by labels itself: posting an alert again
only refreshes it, so a redelivery after a crash is harmless here."""

from __future__ import annotations

import time

import aiohttp
import orjson

from notifier.alertmanager_mapping import postable_alerts
from notifier.grouping import Notification
from notifier.settings import NotifySettings, SinkName
from notifier.sinks.http import post


class AlertmanagerSink:
    """POST /api/v2/alerts."""

    name: SinkName = "alertmanager"

    def __init__(self, settings: NotifySettings) -> None:
        assert settings.alertmanager_url
        self._url = settings.alertmanager_url.rstrip("/") + "/api/v2/alerts"
        self._settings = settings
        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=settings.sink_timeout_s))

    async def deliver(self, notification: Notification) -> None:
        """One attempt."""
        body = postable_alerts(
            notification,
            int(time.time() * 1000),
            message_ttl_ms=int(self._settings.alertmanager_message_ttl_s * 1000),
            condition_ttl_ms=int(self._settings.alertmanager_condition_ttl_s * 1000),
            examples=self._settings.group_examples,
        )
        await post(self._session, self._url, orjson.dumps(body), {})

    async def close(self) -> None:
        """Close the HTTP session."""
        await self._session.close()
