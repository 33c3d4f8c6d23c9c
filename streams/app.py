"""The worker's app factory: topology, agents and views, wired once in the entry point."""

from __future__ import annotations

import faust

from schemas.channels import ChannelsConfig
from streams.adapters.registry import channel_resolver
from streams.agents import register_agents
from streams.filters import status_filter
from streams.settings import WorkerSettings
from streams.topology import build_topology
from streams.views import register_views


def create_app(settings: WorkerSettings, channels: ChannelsConfig | None = None) -> faust.App:
    """A Faust app with the worker's stages wired to the configured topics and channels."""
    topology = build_topology(settings)
    configured = channels.channels if channels is not None else ()
    resolve = channel_resolver((c.name, c.provider, c.options) for c in configured)
    register_agents(topology, status_filter(channels), resolve)
    register_views(topology)
    return topology.app
