"""`python -m dashboard`: serve the dashboard on the configured address (default 127.0.0.1:8090)."""

from __future__ import annotations

import logging
import os

from aiohttp import web

from dashboard.app import create_app
from dashboard.settings import DashboardSettings
from schemas.errors import ConfigurationError
from schemas.live_channels import LiveChannels

log = logging.getLogger("dashboard")


def main(settings: DashboardSettings | None = None) -> None:
    """Serve until SIGINT/SIGTERM."""
    settings = settings or DashboardSettings()
    logging.basicConfig(level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s %(message)s")
    try:
        # The one place the environment is handed over: tenants' tokens may come from it.
        channels = LiveChannels.load(settings.channels_file, os.environ) if settings.channels_file else None
    except ConfigurationError as exc:
        log.critical("bad configuration: %s", exc)
        raise SystemExit(2) from exc
    if channels is not None and channels.current.access_controlled:
        log.info("tenants configured in %s: the page asks for an API token", channels.current.source)
    log.info("dashboard on http://%s:%s/", settings.dashboard_host, settings.dashboard_port)
    web.run_app(
        create_app(settings, channels, reload_on_sighup=True),
        host=settings.dashboard_host,
        port=settings.dashboard_port,
        shutdown_timeout=5,
        print=None,
    )


if __name__ == "__main__":
    main()
