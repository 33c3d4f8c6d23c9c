"""`python -m receiver`: serve webhooks on the configured address."""

from __future__ import annotations

import asyncio
import gc
import logging
import os

from aiohttp import web
from aiokafka.errors import KafkaError

from receiver.app import create_app
from receiver.logs import AccessLogger, configure_logging
from receiver.settings import ReceiverSettings
from schemas.errors import ConfigurationError
from schemas.event_loop import install_event_loop
from schemas.live_channels import LiveChannels, hold_sighup
from schemas.topics import ensure_topics

log = logging.getLogger("receiver")


def main() -> None:
    """Load settings and channels, create the topics if the broker is up, serve until SIGINT/SIGTERM;
    the channels file is reloaded when it changes and on SIGHUP."""
    hold_sighup()
    settings = ReceiverSettings()
    configure_logging(settings.log_level, settings.log_format, settings.privacy())
    install_event_loop(settings.event_loop)
    # The one place the environment is handed over: secrets of channels may come from it.
    try:
        channels = LiveChannels.load(settings.channels_file, os.environ) if settings.channels_file else None
    except ConfigurationError as exc:
        log.critical("bad configuration: %s", exc)
        raise SystemExit(2) from exc
    try:
        asyncio.run(ensure_topics(settings))
    except (KafkaError, OSError) as exc:
        # The spool takes webhooks while the broker is away; the topics are created when it is back.
        log.warning("topics not ensured, broker unreachable: %r", exc)
    # SIGHUP reloads the channels file, as a change of the file does (schemas/live_channels.py).
    app = create_app(settings, channels=channels, reload_on_sighup=True)
    # Everything built so far lives as long as the process: out of the collector's sight, and
    # young-generation collections rarer, so a full collection does not stall requests in flight.
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 20, 100)
    web.run_app(
        app,
        host=settings.host,
        port=settings.port,
        reuse_port=settings.reuse_port,
        shutdown_timeout=settings.shutdown_timeout_s,
        print=None,
        access_log_class=AccessLogger,
    )


if __name__ == "__main__":
    main()
