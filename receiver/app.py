"""The receiver's app factory: routes, middleware and the lifecycle of producer, spool and drainer."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable

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
from schemas.live_channels import LiveChannels, ReloadMetrics, reloading

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
    settings: ReceiverSettings,
    publisher: Publisher | None = None,
    channels: ChannelsConfig | LiveChannels | None = None,
    *,
    reload_on_sighup: bool = False,
) -> web.Application:
    """The receiver; `publisher` defaults to a Kafka producer opened with the app; no channels: development mode.

    Channels loaded from their file (LiveChannels.load) are reloaded while the app runs: when the
    file changes (every `channels_poll_s`) and, with `reload_on_sighup` (the entry point's), on SIGHUP.
    """
    app = web.Application(
        middlewares=[errors_middleware],
        client_max_size=settings.max_body_bytes,
        # After a 413 or 408 the unread rest of a body is discarded for at most this long (so the
        # client still reads the answer), then the connection is closed: bounded time, no buffer.
        handler_args={"lingering_time": LINGER_S},
    )
    app[SETTINGS] = settings
    app[METRICS] = ReceiverMetrics.create()
    live = LiveChannels(channels) if isinstance(channels, ChannelsConfig) else channels
    if live is not None:
        app[CHANNELS] = live
        live.report_to(ReloadMetrics.register(app[METRICS].registry))
        live.subscribe(_warn_about_open_channels)
        app.cleanup_ctx.append(_reloading(live, settings.channels_poll_s, reload_on_sighup))
    app.cleanup_ctx.append(durability(publisher))
    _warn_about_auth(settings, live.current if live is not None else None)
    setup_routes(app)
    return app


def _reloading(live: LiveChannels, poll_s: float, sighup: bool) -> Callable[[web.Application], AsyncIterator[None]]:
    async def context(app: web.Application) -> AsyncIterator[None]:
        async with reloading(live, poll_s, sighup=sighup):
            yield

    return context


def _warn_about_open_channels(channels: ChannelsConfig) -> None:
    for channel in channels.channels:
        if channel.auth.kind == "none":
            log.warning(
                "channel %s (%s) accepts unauthenticated webhooks (auth kind none)", channel.name, channel.provider
            )


def _warn_about_auth(settings: ReceiverSettings, channels: ChannelsConfig | None) -> None:
    if channels is None:
        if settings.allow_unauthenticated_loopback:
            log.warning(
                "DEVELOPMENT MODE: no channels file (STATUSFLOW_CHANNELS_FILE); every provider on channel 'default',"
                " unsigned webhooks accepted from loopback only"
            )
        return
    _warn_about_open_channels(channels)
    log.info("%s channels configured from %s", len(channels.channels), channels.source)
