"""Routing by configured channel: unknown channels are 404, development mode accepts any channel."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from receiver.app import create_app
from receiver.settings import ReceiverSettings
from schemas.channels import parse_channels
from schemas.envelope import RawWebhook
from tests.factories import FIXTURES
from tests.unit.test_receiver_http import RecordingPublisher

BODY = (FIXTURES / "meta" / "status_sent.json").read_bytes()
JSON = {"Content-Type": "application/json"}
CHANNELS = {
    "channels": [
        {"name": "default", "provider": "meta"},
        {"name": "shop-br", "provider": "meta", "auth": {"kind": "none", "verify_token": "vt"}},
        {"name": "sms", "provider": "twilio"},
    ]
}

ClientFactory = Callable[..., Any]


@pytest.fixture
async def make_client(tmp_path: Path) -> AsyncIterator[ClientFactory]:
    clients: list[TestClient[Any, Any]] = []

    async def factory(
        channels: dict[str, Any] | None = None, **overrides: Any
    ) -> tuple[TestClient[Any, Any], RecordingPublisher]:
        publisher = RecordingPublisher()
        settings = ReceiverSettings(**{"max_body_bytes": 4096, "spool_dir": tmp_path / "spool", **overrides})
        config = parse_channels(channels, {}) if channels is not None else None
        client: TestClient[Any, Any] = TestClient(TestServer(create_app(settings, publisher, channels=config)))
        await client.start_server()
        clients.append(client)
        return client, publisher

    yield factory
    for client in clients:
        await client.close()


@pytest.mark.parametrize(
    ("path", "status", "channel"),
    [
        ("/webhooks/meta/shop-br", 200, "shop-br"),
        ("/webhooks/meta", 200, "default"),
        ("/webhooks/meta/unknown", 404, None),
        ("/webhooks/twilio/shop-br", 404, None),  # the channel exists, for another provider
        ("/webhooks/nope/shop-br", 404, None),
    ],
)
async def test_configured_channels_route_and_unknown_ones_are_404(
    make_client: ClientFactory, path: str, status: int, channel: str | None
) -> None:
    client, publisher = await make_client(CHANNELS)
    response = await client.post(path, data=BODY, headers=JSON)
    assert response.status == status, await response.text()
    raws = publisher.on("wa.webhooks.raw")
    if channel is None:
        assert raws == []
        assert len(publisher.on("wa.audit")) == 1
    else:
        assert RawWebhook.from_avro(raws[0][1]).channel == channel


async def test_development_mode_accepts_any_channel_name(make_client: ClientFactory) -> None:
    client, publisher = await make_client()
    response = await client.post("/webhooks/meta/anything", data=BODY, headers=JSON)
    assert response.status == 200
    assert RawWebhook.from_avro(publisher.on("wa.webhooks.raw")[0][1]).channel == "anything"


async def test_meta_handshake_uses_the_channels_verify_token(make_client: ClientFactory) -> None:
    client, _ = await make_client(CHANNELS)
    query = {"hub.mode": "subscribe", "hub.challenge": "42", "hub.verify_token": "vt"}
    ok = await client.get("/webhooks/meta/shop-br", params=query)
    no_token = await client.get("/webhooks/meta", params=query)  # channel default has no verify token
    unknown = await client.get("/webhooks/meta/unknown", params=query)
    assert (ok.status, await ok.text()) == (200, "42")
    assert (no_token.status, unknown.status) == (403, 404)
