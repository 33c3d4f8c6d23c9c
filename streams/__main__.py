"""`python -m streams`: run one stream worker (normalize + track) against the configured broker."""

from __future__ import annotations

import asyncio
import logging

from faust.worker import Worker

from schemas.topics import ensure_topics
from streams.app import create_app
from streams.settings import WorkerSettings


def main() -> None:
    """Create the topics if needed, then run the worker until SIGINT/SIGTERM."""
    settings = WorkerSettings()
    logging.basicConfig(level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s %(message)s")
    asyncio.run(ensure_topics(settings))
    app = create_app(settings)
    worker = Worker(app, loglevel=settings.log_level, quiet=True)
    worker.execute_from_commandline()


if __name__ == "__main__":
    main()
