"""Typed keys of the receiver's application state."""

from __future__ import annotations

from aiohttp import web

from receiver.observability import ReceiverMetrics
from receiver.publisher import Publisher
from receiver.settings import ReceiverSettings

SETTINGS = web.AppKey("settings", ReceiverSettings)
PUBLISHER = web.AppKey("publisher", Publisher)
METRICS = web.AppKey("metrics", ReceiverMetrics)
REQUEST_ID = web.RequestKey("request_id", str)
