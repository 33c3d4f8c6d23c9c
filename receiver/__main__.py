"""`python -m receiver`: serve webhooks on the configured address."""

from __future__ import annotations

import asyncio
import logging

from aiohttp import web

from receiver.app import create_app
from receiver.settings import ReceiverSettings
from schemas.topics import ensure_topics


def main() -> None:
    """Create the topics if needed, then serve until SIGINT/SIGTERM (graceful shutdown)."""
    settings = ReceiverSettings()
    logging.basicConfig(level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s %(message)s")
    asyncio.run(ensure_topics(settings))
    web.run_app(create_app(settings), host=settings.host, port=settings.port, shutdown_timeout=10, print=None)


if __name__ == "__main__":
    main()
