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
from schemas.live_channels import LiveChannels, ReloadMetrics, reloading
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


def _reloading(live: LiveChannels, poll_s: float, sighup: bool) -> Callable[[web.Application], AsyncIterator[None]]:
    async def context(app: web.Application) -> AsyncIterator[None]:
        async with reloading(live, poll_s, sighup=sighup):
            yield

    return context


def create_app(
    settings: DashboardSettings,
    channels: ChannelsConfig | LiveChannels | Callable[[], ChannelsConfig | None] | None = None,
    *,
    reload_on_sighup: bool = False,
) -> web.Application:
    """The dashboard app; its service starts and stops with it. `channels` (or a function that
    returns the configuration in force): with tenants in it, the data needs a bearer token and a
    tenant's token shows its channels only (dashboard/access_web.py); without, all is open.
    Channels loaded from their file (LiveChannels.load) are reloaded while the app runs, like the
    receiver's: a rotated token or a new tenant applies without a restart."""
    if isinstance(channels, LiveChannels):
        live = channels
        current: Callable[[], ChannelsConfig | None] = lambda: live.current  # noqa: E731
    else:
        current = channels if callable(channels) else _fixed(channels)
    app = web.Application(middlewares=[access_middleware(CurrentAccess(current), scope_of)])
    app[SETTINGS] = settings
    app[METRICS] = DashboardMetrics.create()
    app[SERVICE] = DashboardService(settings, app[METRICS])
    if isinstance(channels, LiveChannels):
        # The same statusflow_config_* figures as the receiver's and the worker's.
        channels.report_to(ReloadMetrics.register(app[METRICS].registry))
        app.cleanup_ctx.append(_reloading(channels, settings.channels_poll_s, reload_on_sighup))
    app.cleanup_ctx.append(_service)
    app.on_shutdown.append(_end_streams)
    setup_routes(app)
    return app
