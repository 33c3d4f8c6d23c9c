"""`python -m dashboard`: serve the dashboard on the configured address (default 127.0.0.1:8090)."""

from __future__ import annotations

import logging

from aiohttp import web

from dashboard.app import create_app
from dashboard.settings import DashboardSettings

log = logging.getLogger("dashboard")


def main(settings: DashboardSettings | None = None) -> None:
    """Serve until SIGINT/SIGTERM."""
    settings = settings or DashboardSettings()
    logging.basicConfig(level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s %(message)s")
    log.info("dashboard on http://%s:%s/", settings.dashboard_host, settings.dashboard_port)
    web.run_app(
        create_app(settings),
        host=settings.dashboard_host,
        port=settings.dashboard_port,
        shutdown_timeout=5,
        print=None,
    )


if __name__ == "__main__":
    main()
