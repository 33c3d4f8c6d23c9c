"""The dashboard's routes: the page, its snapshot as JSON, server-sent events, health, metrics."""

from __future__ import annotations

import asyncio
from pathlib import Path

import orjson
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from dashboard.access_web import visible_to
from dashboard.context import METRICS, SERVICE, SETTINGS

STATIC = Path(__file__).resolve().parent / "static"
# An SSE comment this often keeps proxies from closing a quiet stream.
HEARTBEAT_S = 15.0


async def index(request: web.Request) -> web.FileResponse:
    """GET /: the page (static HTML; app.js renders the snapshots)."""
    return web.FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-cache"})


async def api_snapshot(request: web.Request) -> web.Response:
    """GET /api/snapshot: everything the page shows, as JSON (a tenant's channels only)."""
    return web.Response(
        body=orjson.dumps(request.app[SERVICE].latest_for(visible_to(request))),
        content_type="application/json",
        headers={"Cache-Control": "no-cache"},
    )


async def api_stream(request: web.Request) -> web.StreamResponse:
    """GET /api/stream: server-sent events, one `snapshot` event per refresh (a tenant's channels only)."""
    service = request.app[SERVICE]
    visible = visible_to(request)
    response = web.StreamResponse(
        headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    )
    await response.prepare(request)
    refresh_ms = int(request.app[SETTINGS].dashboard_refresh_s * 1000)
    version = service.version
    try:
        await response.write(f"retry: {refresh_ms}\n".encode() + _event(service.latest_for(visible)))
        while service.running:
            newer = await service.wait_newer(version, HEARTBEAT_S)
            if newer == version:
                await response.write(b": heartbeat\n\n")
                continue
            version = newer
            await response.write(_event(service.latest_for(visible)))
    except (ConnectionResetError, asyncio.CancelledError):
        # The browser went away or the server stops: either way this stream is over.
        return response
    return response


def _event(document: object) -> bytes:
    return b"event: snapshot\ndata: " + orjson.dumps(document) + b"\n\n"


async def healthz(request: web.Request) -> web.Response:
    """Alive."""
    return web.json_response({"status": "ok"})


async def metrics_view(request: web.Request) -> web.Response:
    """GET /metrics in the Prometheus text format."""
    body = generate_latest(request.app[METRICS].registry)
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


def setup_routes(app: web.Application) -> None:
    """Every route of the dashboard."""
    app.router.add_get("/", index)
    app.router.add_get("/api/snapshot", api_snapshot)
    app.router.add_get("/api/stream", api_stream)
    app.router.add_get("/healthz", healthz, allow_head=False)
    app.router.add_get("/metrics", metrics_view, allow_head=False)
    app.router.add_static("/static/", STATIC, append_version=True)
