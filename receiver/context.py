"""Typed keys of the receiver's application state."""

from __future__ import annotations

from aiohttp import web

from receiver.durable import DurableLog
from receiver.observability import ReceiverMetrics
from receiver.settings import ReceiverSettings
from schemas.live_channels import LiveChannels

SETTINGS = web.AppKey("settings", ReceiverSettings)
CHANNELS = web.AppKey("channels", LiveChannels)  # .current: read once per request
DURABLE = web.AppKey("durable", DurableLog)
METRICS = web.AppKey("metrics", ReceiverMetrics)
REQUEST_ID = web.RequestKey("request_id", str)
BODY = web.RequestKey("body", bytes)  # the body once read in full: audits quote it, never read it again
