"""`python -m notifier` (or `statusflow notify`): deliver wa.alerts to the configured sinks."""

from __future__ import annotations

import asyncio
import logging
import signal

from notifier.service import serve
from notifier.settings import NotifySettings
from schemas.event_loop import install_event_loop

log = logging.getLogger("notifier")


async def _main(settings: NotifySettings) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    await serve(settings, stop)


def main(settings: NotifySettings | None = None) -> None:
    """Run until SIGINT/SIGTERM."""
    settings = settings or NotifySettings()
    logging.basicConfig(level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s %(message)s")
    logging.getLogger("aiokafka").setLevel(logging.WARNING)
    log.info("notifier: metrics on http://%s:%s/metrics; sinks %s", settings.host, settings.port, settings.sink_names())
    install_event_loop(settings.kafka.event_loop)
    asyncio.run(_main(settings))


if __name__ == "__main__":
    main()
