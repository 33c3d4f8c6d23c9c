"""An HTTP webhook: JSON with a Slack-compatible `text`, so a chat's incoming-webhook URL works
as it is, plus the structured alerts. With a secret, the body is signed (HMAC-SHA256)."""

from __future__ import annotations

import hashlib
import hmac

import aiohttp
import orjson

from notifier.grouping import Notification
from notifier.rendering import webhook_body
from notifier.settings import NotifySettings, WebhookSinkConfig
from notifier.sinks.http import post

SIGNATURE_HEADER = "X-Statusflow-Signature"
ID_HEADER = "X-Statusflow-Notification-Id"


def signature(secret: bytes, body: bytes) -> str:
    """`sha256=<hex>` of the body, as GitHub and Meta sign theirs."""
    return "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()


class WebhookSink:
    """POST the notification as JSON."""

    def __init__(self, config: WebhookSinkConfig, settings: NotifySettings) -> None:
        self.name = config.name
        self._url = config.url
        secret = config.secret.get_secret_value() if config.secret else ""
        self._secret = secret.encode() if secret else None  # compose passes an unset secret as ""
        self._examples = settings.group_examples
        timeout = aiohttp.ClientTimeout(total=settings.timeout_s(config))
        self._session = aiohttp.ClientSession(timeout=timeout)

    async def deliver(self, notification: Notification) -> None:
        """One attempt; the notification id lets a receiver drop a repeat."""
        body = orjson.dumps(webhook_body(notification, self._examples))
        headers = {ID_HEADER: notification.notification_id}
        if self._secret is not None:
            headers[SIGNATURE_HEADER] = signature(self._secret, body)
        await post(self._session, self._url, body, headers)

    async def close(self) -> None:
        """Close the HTTP session."""
        await self._session.close()
