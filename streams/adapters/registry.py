"""Adapters by provider name: the one place that knows which providers exist."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from schemas.errors import ConfigurationError
from streams.adapters.aivo import AivoAdapter, load_aivo_adapter
from streams.adapters.base import Adapter
from streams.adapters.generic import DEFAULT_CONFIG, GenericAdapter, GenericConfig, load_generic_config
from streams.adapters.gupshup import GupshupAdapter
from streams.adapters.infobip import InfobipAdapter
from streams.adapters.meta import MetaAdapter
from streams.adapters.twilio import TwilioAdapter
from streams.adapters.vonage import VonageAdapter
from streams.adapters.weni import WeniAdapter
from streams.adapters.wpp import WPP_PRESET, load_wpp_config

ADAPTERS: dict[str, Adapter] = {
    "meta": MetaAdapter(),
    "twilio": TwilioAdapter(),
    "infobip": InfobipAdapter(),
    "vonage": VonageAdapter(),
    "gupshup": GupshupAdapter(),
    "aivo": AivoAdapter(),
    "weni": WeniAdapter(),
    "generic": GenericAdapter("generic", DEFAULT_CONFIG),
    "wpp": GenericAdapter("wpp", WPP_PRESET),
}


def adapter_for(provider: str, channel: str | None = None) -> Adapter | None:
    """The adapter of a provider (the default one; see `channel_resolver`), None when there is none."""
    del channel
    return ADAPTERS.get(provider)


Resolver = Callable[[str, str], Adapter | None]

# Providers whose adapter is configured per channel (`options` in the channels file): field
# paths and words (generic, wpp), and the time zone of local times (these and aivo).
CONFIGURABLE: dict[str, Callable[[Mapping[str, Any]], GenericConfig]] = {
    "generic": load_generic_config,
    "wpp": load_wpp_config,
}
# Other adapters built from a channel's options.
FACTORIES: dict[str, Callable[[Mapping[str, Any]], Adapter]] = {
    "aivo": load_aivo_adapter,
}


def channel_resolver(channels: Iterable[tuple[str, str, Mapping[str, Any]]]) -> Resolver:
    """A resolver that gives channels with adapter options their own adapter.

    `channels` yields (channel name, provider, options); a bad option raises
    ConfigurationError at start-up, naming the channel.
    """
    own: dict[tuple[str, str], Adapter] = {}
    for name, provider, options in channels:
        load = CONFIGURABLE.get(provider)
        factory = FACTORIES.get(provider)
        if (load is None and factory is None) or not options:
            continue
        try:
            if load is not None:
                own[(provider, name)] = GenericAdapter(provider, load(options))
            elif factory is not None:
                own[(provider, name)] = factory(options)
        except ConfigurationError as exc:
            msg = f"channel {name!r}: options: {exc}"
            raise ConfigurationError(msg) from exc

    def resolve(provider: str, channel: str) -> Adapter | None:
        return own.get((provider, channel)) or ADAPTERS.get(provider)

    return resolve
