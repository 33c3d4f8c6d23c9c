"""Adapters by provider name: the one place that knows which providers exist."""

from __future__ import annotations

from streams.adapters.base import Adapter
from streams.adapters.infobip import InfobipAdapter
from streams.adapters.meta import MetaAdapter
from streams.adapters.twilio import TwilioAdapter
from streams.adapters.vonage import VonageAdapter

ADAPTERS: dict[str, Adapter] = {
    "meta": MetaAdapter(),
    "twilio": TwilioAdapter(),
    "infobip": InfobipAdapter(),
    "vonage": VonageAdapter(),
}


def adapter_for(provider: str) -> Adapter | None:
    """The adapter of a provider, None when there is none."""
    return ADAPTERS.get(provider)
