"""The worker's app factory: topology, agents and views, wired once in the entry point."""

from __future__ import annotations

import faust
from faust.sensors.prometheus import setup_prometheus_sensors
from prometheus_client import CollectorRegistry

from schemas.channels import ChannelsConfig
from streams.adapters.registry import channel_resolver
from streams.agents import register_agents
from streams.filters import status_filter
from streams.settings import WorkerSettings
from streams.topology import build_topology
from streams.views import register_views

WORKER_METRICS_PREFIX = "statusflow_worker"


def create_app(settings: WorkerSettings, channels: ChannelsConfig | None = None) -> faust.App:
    """A Faust app with the worker's stages wired to the configured topics and channels."""
    topology = build_topology(settings)
    configured = channels.channels if channels is not None else ()
    resolve = channel_resolver((c.name, c.provider, c.options) for c in configured)
    register_agents(topology, status_filter(channels), resolve)
    register_views(topology)
    # GET /metrics: Faust's own sensors (agents' events, table operations, sends, rebalances) under
    # one fixed prefix, whatever the app id, in a registry of this app's own.
    setup_prometheus_sensors(topology.app, registry=CollectorRegistry(), name_prefix=WORKER_METRICS_PREFIX)
    return topology.app
