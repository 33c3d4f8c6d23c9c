"""The dashboard's app factory: routes, and the service that feeds the snapshots."""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web

from dashboard.context import METRICS, SERVICE, SETTINGS
from dashboard.observability import DashboardMetrics
from dashboard.service import DashboardService
from dashboard.settings import DashboardSettings
from dashboard.views import setup_routes


async def _service(app: web.Application) -> AsyncIterator[None]:
    service = app[SERVICE]
    await service.start()
    yield
    await service.stop()


async def _end_streams(app: web.Application) -> None:
    # Before aiohttp waits for open handlers: the page's event streams end instead of holding shutdown.
    await app[SERVICE].stop()


def create_app(settings: DashboardSettings) -> web.Application:
    """The dashboard app; its service starts and stops with it."""
    app = web.Application()
    app[SETTINGS] = settings
    app[METRICS] = DashboardMetrics.create()
    app[SERVICE] = DashboardService(settings, app[METRICS])
    app.cleanup_ctx.append(_service)
    app.on_shutdown.append(_end_streams)
    setup_routes(app)
    return app
