"""Adapters by provider name: the one place that knows which providers exist."""

from __future__ import annotations

from streams.adapters.aivo import AivoAdapter
from streams.adapters.base import Adapter
from streams.adapters.generic import DEFAULT_CONFIG, GenericAdapter
from streams.adapters.gupshup import GupshupAdapter
from streams.adapters.infobip import InfobipAdapter
from streams.adapters.meta import MetaAdapter
from streams.adapters.twilio import TwilioAdapter
from streams.adapters.vonage import VonageAdapter
from streams.adapters.weni import WeniAdapter
from streams.adapters.wpp import WPP_PRESET

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


def adapter_for(provider: str) -> Adapter | None:
    """The adapter of a provider, None when there is none."""
    return ADAPTERS.get(provider)
