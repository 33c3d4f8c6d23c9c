"""The receiver's app factory: routes, middleware and the lifecycle of producer, spool and drainer."""

from __future__ import annotations

import logging

from aiohttp import web

from receiver.context import CHANNELS, METRICS, SETTINGS
from receiver.handlers import meta_handshake, receive_webhook
from receiver.lifecycle import durability
from receiver.middleware import errors_middleware
from receiver.observability import ReceiverMetrics
from receiver.ops import healthz, metrics_view, openapi_view, readyz
from receiver.providers import WEBHOOK_METHODS
from receiver.publisher import Publisher
from receiver.settings import ReceiverSettings
from schemas.channels import ChannelsConfig

log = logging.getLogger(__name__)

LINGER_S = 1.0


def setup_routes(app: web.Application) -> None:
    """Every route of the receiver (each one is described in receiver/openapi.py)."""
    for path in ("/webhooks/{provider}", "/webhooks/{provider}/{channel}"):
        # PUT and PATCH only for providers whose senders can be set to them (receiver/providers.py).
        for method in WEBHOOK_METHODS:
            app.router.add_route(method, path, receive_webhook)
        app.router.add_get(path, meta_handshake, allow_head=False)
    app.router.add_get("/healthz", healthz, allow_head=False)
    app.router.add_get("/readyz", readyz, allow_head=False)
    app.router.add_get("/metrics", metrics_view, allow_head=False)
    app.router.add_get("/openapi.json", openapi_view, allow_head=False)


def create_app(
    settings: ReceiverSettings, publisher: Publisher | None = None, channels: ChannelsConfig | None = None
) -> web.Application:
    """The receiver; `publisher` defaults to a Kafka producer opened with the app; no channels: development mode."""
    app = web.Application(
        middlewares=[errors_middleware],
        client_max_size=settings.max_body_bytes,
        # After a 413 or 408 the unread rest of a body is discarded for at most this long (so the
        # client still reads the answer), then the connection is closed: bounded time, no buffer.
        handler_args={"lingering_time": LINGER_S},
    )
    app[SETTINGS] = settings
    app[METRICS] = ReceiverMetrics.create()
    if channels is not None:
        app[CHANNELS] = channels
    app.cleanup_ctx.append(durability(publisher))
    _warn_about_auth(settings, channels)
    setup_routes(app)
    return app


def _warn_about_auth(settings: ReceiverSettings, channels: ChannelsConfig | None) -> None:
    if channels is None:
        if settings.allow_unauthenticated_loopback:
            log.warning(
                "DEVELOPMENT MODE: no channels file (STATUSFLOW_CHANNELS_FILE); every provider on channel 'default',"
                " unsigned webhooks accepted from loopback only"
            )
        return
    for channel in channels.channels:
        if channel.auth.kind == "none":
            log.warning(
                "channel %s (%s) accepts unauthenticated webhooks (auth kind none)", channel.name, channel.provider
            )
    log.info("%s channels configured from %s", len(channels.channels), channels.source)
