"""Per-channel status filters: an operator chooses which statuses a channel receives."""

from __future__ import annotations

from collections.abc import Callable

from schemas.channels import ChannelsConfig
from streams.domain.events import StatusEvent


def status_filter(channels: ChannelsConfig | None) -> Callable[[StatusEvent], bool]:
    """Keep events of unconfigured channels and of statuses their channel wants.

    Filtered events are counted in the normalize audit (`events_ignored`), never processed.
    """
    if channels is None:
        return lambda _event: True
    wanted = {c.name: c for c in channels.channels}

    def accept(event: StatusEvent) -> bool:
        channel = wanted.get(event.channel)
        return channel is None or channel.wants(event.status.value)

    return accept
