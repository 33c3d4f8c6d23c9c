"""Channels with adapter options get their own adapter (WPP and generic, by configuration)."""

from __future__ import annotations

import pytest

from schemas.envelope import RawWebhook
from schemas.errors import ConfigurationError
from streams.adapters.registry import ADAPTERS, channel_resolver
from streams.core.normalizer import normalize
from streams.domain.status import Status


def _raw(provider: str, channel: str, body: bytes) -> bytes:
    return RawWebhook("r", provider, channel, 1_750_030_100_000, "application/json", "http://x", body).to_avro()


def test_channel_options_change_the_words_and_paths_without_code() -> None:
    resolve = channel_resolver(
        [("store", "wpp", {"message_id": "msg.ref", "status": "msg.state", "statuses": {"entregue!": "delivered"}})]
    )
    body = b'{"msg": {"ref": "A1", "state": "Entregue!"}, "timestamp": 1750030000}'
    (event,) = normalize(_raw("wpp", "store", body), resolve).events
    assert (event.message_id, event.status, event.provider_status) == ("A1", Status.DELIVERED, "Entregue!")
    # Other channels of the provider keep the preset.
    assert resolve("wpp", "other") is ADAPTERS["wpp"]
    assert normalize(_raw("wpp", "other", body), resolve).dead_letter_reason is not None


def test_a_bad_option_fails_start_up_naming_the_channel() -> None:
    with pytest.raises(ConfigurationError, match="channel 'store'"):
        channel_resolver([("store", "wpp", {"statuses": {"x": "teleported"}})])


def test_providers_without_options_use_their_adapter() -> None:
    resolve = channel_resolver([("shop", "meta", {"anything": 1})])
    assert resolve("meta", "shop") is ADAPTERS["meta"]
