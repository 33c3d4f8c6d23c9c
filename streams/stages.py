"""The channel-dependent functions of the stages: the status filter and the adapter resolver."""

from __future__ import annotations

from collections.abc import Callable

from schemas.channels import ChannelsConfig
from streams.adapters.registry import Resolver, channel_resolver
from streams.core.filters import status_filter
from streams.domain.events import StatusEvent


def stage_functions(channels: ChannelsConfig | None) -> tuple[Callable[[StatusEvent], bool], Resolver]:
    """(accept, resolve) for these channels: which statuses each keeps, which adapter parses it."""
    configured = channels.channels if channels is not None else ()
    return status_filter(channels), channel_resolver((c.name, c.provider, c.options) for c in configured)
