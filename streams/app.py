"""The worker's app factory: topology, agents and views, wired once in the entry point."""

from __future__ import annotations

import faust

from schemas.channels import ChannelsConfig
from streams.agents import register_agents
from streams.settings import WorkerSettings
from streams.stages import stage_functions
from streams.topology import build_topology
from streams.views import register_views


def create_app(settings: WorkerSettings, channels: ChannelsConfig | None = None) -> faust.App:
    """A Faust app with the worker's stages wired to the configured topics and channels."""
    topology = build_topology(settings)
    accept, resolve = stage_functions(channels)
    register_agents(topology, accept, resolve)
    register_views(topology)
    return topology.app
