"""Operational endpoints: liveness, readiness, Prometheus metrics and the OpenAPI document."""

from __future__ import annotations

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from receiver.context import DURABLE, METRICS
from receiver.openapi import document


async def healthz(request: web.Request) -> web.Response:
    """Alive."""
    return web.json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    """Ready to accept webhooks: the broker acknowledges, or the spool can take them."""
    durable = request.app.get(DURABLE)
    ready = durable is not None and await durable.probe()
    body = {
        "status": "ready" if ready else "not ready",
        "broker": "up" if durable is not None and durable.broker_up else "down",
    }
    return web.json_response(body, status=200 if ready else 503)


async def metrics_view(request: web.Request) -> web.Response:
    """GET /metrics in the Prometheus text format."""
    body = generate_latest(request.app[METRICS].registry)
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


async def openapi_view(request: web.Request) -> web.Response:
    """GET /openapi.json: every route of the receiver."""
    return web.json_response(document())
