"""The worker's app factory: topology, agents and views, wired once in the entry point."""

from __future__ import annotations

import faust
from faust.sensors.prometheus import setup_prometheus_sensors
from prometheus_client import CollectorRegistry

from schemas.channels import ChannelsConfig
from schemas.live_channels import LiveChannels
from streams.access_web import register_access
from streams.agents import register_agents
from streams.faust_ext.watchdog import HangWatch
from streams.lag import register_lag
from streams.reload import live_channels, register_reload
from streams.settings import WorkerSettings
from streams.stages import stage_functions
from streams.tenant_figures import TenantFigures
from streams.topology import build_topology
from streams.views import register_views

WORKER_METRICS_PREFIX = "statusflow_worker"


def create_app(
    settings: WorkerSettings, channels: ChannelsConfig | LiveChannels | None = None, hangs: HangWatch | None = None
) -> faust.App:
    """A Faust app with the worker's stages wired to the configured topics and channels; `hangs`
    (the worker process's, streams/faust_ext/watchdog.py) is fed by the lag timer and a heartbeat."""
    topology = build_topology(settings)
    # Channels loaded from their file are reloaded while the worker runs (streams/reload.py):
    # whoever needs them asks for the configuration in force each time.
    live = live_channels(channels)

    def in_force() -> ChannelsConfig | None:
        return live.current if live is not None else None

    accept, resolve = stage_functions(in_force())
    # GET /metrics: Faust's own sensors (agents' events, table operations, sends, rebalances) under
    # one fixed prefix, whatever the app id, in a registry of this app's own; plus the consumer
    # lag of the worker's groups (streams/lag.py) and the stages' own counters (streams/late.py).
    registry = CollectorRegistry()
    register_agents(topology, accept, resolve, registry, TenantFigures(registry, in_force), channels=live)
    register_views(topology)
    register_access(topology.app, in_force)
    register_reload(topology.app, live, settings, registry)
    register_lag(topology, registry, hangs)
    setup_prometheus_sensors(topology.app, registry=registry, name_prefix=WORKER_METRICS_PREFIX)
    return topology.app
