"""The worker's app factory: topology, agents and views, wired once in the entry point."""

from __future__ import annotations

import faust

from streams.agents import register_agents
from streams.settings import WorkerSettings
from streams.topology import build_topology
from streams.views import register_views


def create_app(settings: WorkerSettings) -> faust.App:
    """A Faust app with the normalize and track agents wired to the configured topics."""
    topology = build_topology(settings)
    register_agents(topology)
    register_views(topology)
    return topology.app
