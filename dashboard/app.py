"""The dashboard's app factory: routes, and the service that feeds the snapshots."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

from aiohttp import web

from dashboard.access_web import scope_of
from dashboard.context import METRICS, SERVICE, SETTINGS
from dashboard.observability import DashboardMetrics
from dashboard.service import DashboardService
from dashboard.settings import DashboardSettings
from dashboard.views import setup_routes
from schemas.channels import ChannelsConfig
from streams.access_web import CurrentAccess, access_middleware


async def _service(app: web.Application) -> AsyncIterator[None]:
    service = app[SERVICE]
    await service.start()
    yield
    await service.stop()


async def _end_streams(app: web.Application) -> None:
    # Before aiohttp waits for open handlers: the page's event streams end instead of holding shutdown.
    await app[SERVICE].stop()


def _fixed(config: ChannelsConfig | None) -> Callable[[], ChannelsConfig | None]:
    return lambda: config


def create_app(
    settings: DashboardSettings, channels: ChannelsConfig | Callable[[], ChannelsConfig | None] | None = None
) -> web.Application:
    """The dashboard app; its service starts and stops with it. `channels` (or a function that
    returns the configuration in force): with tenants in it, the data needs a bearer token and a
    tenant's token shows its channels only (dashboard/access_web.py); without, all is open."""
    current = channels if callable(channels) else _fixed(channels)
    app = web.Application(middlewares=[access_middleware(CurrentAccess(current), scope_of)])
    app[SETTINGS] = settings
    app[METRICS] = DashboardMetrics.create()
    app[SERVICE] = DashboardService(settings, app[METRICS])
    app.cleanup_ctx.append(_service)
    app.on_shutdown.append(_end_streams)
    setup_routes(app)
    return app
