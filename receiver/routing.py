"""Which provider and channel a webhook path names, refused with 404 when unknown."""

from __future__ import annotations

import dataclasses

from receiver.errors import Rejected
from receiver.providers import PROVIDERS, ProviderSpec
from schemas.channels import DEFAULT_CHANNEL, ChannelConfig, ChannelsConfig


@dataclasses.dataclass(frozen=True, slots=True)
class Route:
    """The provider of a request and its channel (None in development mode)."""

    spec: ProviderSpec
    channel_name: str
    channel: ChannelConfig | None


def resolve(provider: str, channel_name: str | None, channels: ChannelsConfig | None) -> Route:
    """The route of /webhooks/{provider}[/{channel}]; a path without channel means `default`."""
    spec = PROVIDERS.get(provider)
    if spec is None:
        raise Rejected(404, f"unknown provider {provider!r}", provider=provider)
    name = channel_name or DEFAULT_CHANNEL
    if channels is None:
        return Route(spec, name, None)
    channel = channels.get(name)
    if channel is None or channel.provider != spec.name:
        raise Rejected(404, f"no {spec.name} channel {name!r} is configured", provider=provider)
    return Route(spec, name, channel)
