"""`python -m streams`: run one stream worker (normalize + track) against the configured broker."""

from __future__ import annotations

import asyncio
import logging
import os

import faust
from faust.worker import Worker as FaustWorker

from schemas.errors import ConfigurationError
from schemas.event_loop import install_event_loop
from schemas.live_channels import LiveChannels, hold_sighup
from schemas.topics import ensure_topics
from streams.app import create_app
from streams.faust_ext.table_store import preload
from streams.faust_ext.watchdog import HangWatch, start_hang_watchdog, start_recovery_watchdog
from streams.settings import WorkerSettings
from streams.topology import internal_topics


class Worker(FaustWorker):
    """Faust's worker without its terminal spinner (named Worker: its logs say [^Worker]).

    At log levels from WARNING up the spinner lowers the root logger to DEBUG, so that it
    spins on every log record: every debug call of every library (aiokafka logs each record
    it sends) then builds a record, about 9 % of the worker's time in a profile.
    """

    def on_setup_root_logger(self, logger: logging.Logger, level: int) -> None:
        self.spinner = None


async def _prepare(settings: WorkerSettings, app: faust.App) -> None:
    """Topics first (also Faust's own), then the in-memory tables' changelogs in bulk."""
    created = set(await ensure_topics(settings, internal_topics(app, settings)))
    if settings.store == "memory":
        # A changelog created just now is empty: nothing to load (and a fresh topic's first
        # offset requests can take a second of NotLeader retries). Not loading is always safe:
        # Faust then recovers the partition itself.
        changelogs = {name: table.changelog_topic.get_topic_name() for name, table in app.tables.items()}
        await preload(settings.bootstrap_servers, {n: t for n, t in changelogs.items() if t not in created})


def main() -> None:
    """Create the topics (also Faust's own) if needed, then run the worker until SIGINT/SIGTERM."""
    hold_sighup()
    settings = WorkerSettings()
    logging.basicConfig(level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s %(message)s")
    install_event_loop(settings.event_loop)
    try:
        # Reloaded while the worker runs: when the file changes and on SIGHUP (streams/reload.py).
        channels = LiveChannels.load(settings.channels_file, os.environ) if settings.channels_file else None
        hangs = HangWatch(settings.hang_after_s, settings.lag_interval_s)
        app = create_app(settings, channels, hangs)
    except ConfigurationError as exc:
        logging.getLogger(__name__).critical("bad configuration: %s", exc)
        raise SystemExit(2) from exc
    asyncio.run(_prepare(settings, app))
    worker = Worker(app, loglevel=settings.log_level, quiet=True)
    start_recovery_watchdog(app, settings.recovery_stall_s)
    start_hang_watchdog(hangs, settings.lag_interval_s)
    worker.execute_from_commandline()


if __name__ == "__main__":
    main()
