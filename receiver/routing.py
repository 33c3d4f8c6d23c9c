"""Which provider and channel a webhook path names, refused with 404 when unknown."""

from __future__ import annotations

import dataclasses
import re

from receiver.errors import Rejected
from receiver.providers import PROVIDERS, ProviderSpec
from schemas.channels import DEFAULT_CHANNEL, NAME_PATTERN, ChannelConfig, ChannelsConfig

_CHANNEL_NAME = re.compile(NAME_PATTERN)


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
        # Development mode takes any channel, but only under a name a channels file could give
        # it: the name is part of each message's key (`provider:channel:id`), delimited by `:`.
        if not _CHANNEL_NAME.fullmatch(name):
            raise Rejected(404, f"{name!r} is not a channel name ({NAME_PATTERN})", provider=provider)
        return Route(spec, name, None)
    channel = channels.get(name)
    if channel is None or channel.provider != spec.name:
        raise Rejected(404, f"no {spec.name} channel {name!r} is configured", provider=provider)
    return Route(spec, name, channel)
