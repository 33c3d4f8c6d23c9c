"""The worker's live channels: reloaded when the file changes and on SIGHUP, while it runs.

The worker process reads the file (schemas/live_channels.py); a configuration whose adapter
options do not build is refused like a file that does not parse. What it applies reaches the
normalize stage from its next batch on: in this event loop, or in the child process through
NormalizeProcess.update (streams/agents.py subscribes them). The child never reads the file.
"""

from __future__ import annotations

import asyncio

import faust
import mode
from prometheus_client import CollectorRegistry

from schemas.channels import ChannelsConfig
from schemas.live_channels import LiveChannels, ReloadMetrics, reloading
from streams.settings import WorkerSettings
from streams.stages import stage_functions


def live_channels(channels: ChannelsConfig | LiveChannels | None) -> LiveChannels | None:
    """Channels as the worker holds them: loaded from a file (reloadable) or fixed (tests)."""
    return LiveChannels(channels) if isinstance(channels, ChannelsConfig) else channels


def register_reload(
    app: faust.App, live: LiveChannels | None, settings: WorkerSettings, registry: CollectorRegistry
) -> None:
    """Check the configuration in force (ConfigurationError at start-up), export the reload
    metrics, and run the file watch and the SIGHUP handler as a service of the worker."""
    if live is None:
        return
    watched = live
    # The adapters the normalize stage would build: a reload with bad options is refused here,
    # before the configuration is swapped, with the channel named.
    live.add_check(stage_functions)
    live.report_to(ReloadMetrics.register(registry))

    @app.service
    class ChannelsReload(mode.Service):
        """The watch and SIGHUP, for as long as the worker runs (its own event loop's signals)."""

        @mode.Service.task
        async def _reload(self) -> None:
            async with reloading(watched, settings.channels_poll_s, sighup=True):
                await asyncio.Event().wait()  # until the worker stops (this task is cancelled)
