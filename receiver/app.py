"""The receiver's app factory: routes, middleware and the producer's lifecycle."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from receiver.context import METRICS, PUBLISHER, SETTINGS
from receiver.handlers import healthz, meta_handshake, receive_webhook
from receiver.middleware import errors_middleware
from receiver.observability import ReceiverMetrics
from receiver.publisher import KafkaPublisher, Publisher
from receiver.settings import ReceiverSettings

log = logging.getLogger(__name__)


async def metrics_view(request: web.Request) -> web.Response:
    """GET /metrics in the Prometheus text format."""
    body = generate_latest(request.app[METRICS].registry)
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


def setup_routes(app: web.Application) -> None:
    """Every route of the receiver."""
    for path in ("/webhooks/{provider}", "/webhooks/{provider}/{channel}"):
        app.router.add_post(path, receive_webhook)
        app.router.add_get(path, meta_handshake)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", healthz)
    app.router.add_get("/metrics", metrics_view)


def create_app(settings: ReceiverSettings, publisher: Publisher | None = None) -> web.Application:
    """The receiver; `publisher` defaults to a Kafka producer opened with the app."""
    app = web.Application(middlewares=[errors_middleware], client_max_size=settings.max_body_bytes)
    app[SETTINGS] = settings
    app[METRICS] = ReceiverMetrics.create()
    if publisher is not None:
        app[PUBLISHER] = publisher
    else:
        app.cleanup_ctx.append(_kafka_publisher)
    if settings.meta_app_secret is None and settings.allow_unauthenticated_loopback:
        log.warning("DEVELOPMENT MODE: no provider secrets configured, unsigned webhooks from loopback are accepted")
    setup_routes(app)
    return app


async def _kafka_publisher(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    publisher = KafkaPublisher(settings.bootstrap_servers, settings.publish_timeout_s)
    await publisher.start()
    app[PUBLISHER] = publisher
    yield
    await publisher.stop()
