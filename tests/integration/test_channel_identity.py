"""Issue 17, Identity, on a real broker, receiver and worker: a message is identified by provider,
channel and the provider's id. Two customers' `generic` channels both number a message `42`:
each keeps its own state, its own changes and its own history, each answered under its own
channel's URL, and the URL without a channel answers for the channel named `default`."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest
from aiohttp.test_utils import TestServer

from receiver.app import create_app
from receiver.settings import ReceiverSettings
from schemas.channels import ChannelsConfig, parse_channels
from schemas.codec import codec
from schemas.settings import KafkaSettings
from schemas.topics import ensure_topics
from tests.integration.conftest import WorkerFactory
from tests.integration.helpers import consume, wait_until

ACME_SECRET = "acme-webhook-token-0123456789"
GLOBEX_SECRET = "globex-webhook-token-0123456789"
T = 1_750_030_000  # epoch seconds of the reports


def _channels() -> ChannelsConfig:
    return parse_channels(
        {
            "channels": [
                {"name": "acme-wa", "provider": "generic", "auth": {"kind": "header_token", "secret": ACME_SECRET}},
                {"name": "globex-wa", "provider": "generic", "auth": {"kind": "header_token", "secret": GLOBEX_SECRET}},
                {"name": "default", "provider": "generic"},
            ]
        },
        {},
    )


@pytest.fixture
async def receiver(kafka_settings: KafkaSettings, tmp_path: Path) -> AsyncIterator[str]:
    await ensure_topics(kafka_settings)
    settings = ReceiverSettings(**kafka_settings.model_dump(), spool_dir=tmp_path / "spool")
    server = TestServer(create_app(settings, channels=_channels()), host="127.0.0.1")
    await server.start_server()
    try:
        yield str(server.make_url("")).rstrip("/")
    finally:
        await server.close()


async def _post(http: aiohttp.ClientSession, url: str, status: str, at: int, token: str | None) -> str:
    body = orjson.dumps({"id": "42", "status": status, "timestamp": str(at)})
    headers = {"Content-Type": "application/json", **({"x-auth-token": token} if token else {})}
    async with http.post(url, data=body, headers=headers) as response:
        assert response.status == 200, await response.text()
        request_id: str = (await response.json())["request_id"]
        return request_id


async def _get(http: aiohttp.ClientSession, url: str) -> tuple[int, Any]:
    try:
        async with http.get(url) as response:
            return response.status, await response.json()
    except aiohttp.ClientError:
        return 0, None  # the worker's web server is not up yet


async def test_message_42_on_two_channels_is_two_messages_each_answered_under_its_channel(
    receiver: str, kafka_settings: KafkaSettings, start_worker: WorkerFactory
) -> None:
    worker = start_worker().url
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as http:
        acme_request = await _post(http, f"{receiver}/webhooks/generic/acme-wa", "sent", T, ACME_SECRET)
        globex_request = await _post(http, f"{receiver}/webhooks/generic/globex-wa", "delivered", T, GLOBEX_SECRET)
        await _post(http, f"{receiver}/webhooks/generic", "read", T, None)  # the channel named `default`

        async def states() -> dict[str, Any] | None:
            found = {}
            for channel, status in (("acme-wa", "sent"), ("globex-wa", "delivered"), ("default", "read")):
                code, state = await _get(http, f"{worker}/messages/generic/{channel}/42")
                if code != 200 or state["status"] != status:
                    return None
                found[channel] = state
            return found

        found = await wait_until(states, within=120, what="message 42 tracked on each of its channels")
        assert {c: (s["message_key"], s["channel"], s["message_id"]) for c, s in found.items()} == {
            "acme-wa": ("generic:acme-wa:42", "acme-wa", "42"),
            "globex-wa": ("generic:globex-wa:42", "globex-wa", "42"),
            "default": ("generic:default:42", "default", "42"),
        }
        assert found["acme-wa"]["timestamps"]["delivered_at"] is None  # globex's delivery is not acme's

        # The form without a channel answers for `default`, its history too; a last segment
        # `history` is the history of that message, not a message named `history` of channel `42`.
        assert await _get(http, f"{worker}/messages/generic/42") == (200, found["default"])
        code, history = await _get(http, f"{worker}/messages/generic/42/history")
        assert (code, history["message_key"]) == (200, "generic:default:42")
        code, acme_history = await _get(http, f"{worker}/messages/generic/acme-wa/42/history")
        assert code == 200
        assert [e["request_id"] for e in acme_history["history"]] == [acme_request]
        code, globex_history = await _get(http, f"{worker}/messages/generic/globex-wa/42/history")
        assert code == 200
        assert [e["request_id"] for e in globex_history["history"]] == [globex_request]
        # A channel that never saw message 42 does not answer another channel's.
        code, unknown = await _get(http, f"{worker}/messages/generic/initech-wa/42")
        assert (code, unknown["message_key"]) == (404, "generic:initech-wa:42")

    change_codec = codec("status_change")
    records = await consume(
        kafka_settings.bootstrap_servers, kafka_settings.topics.changes, until=lambda rs: len(rs) >= 3, within=60
    )
    changes = [(key, change_codec.decode(value)) for key, value in records]
    assert sorted((key, c["message_key"], c["channel"], c["status"]) for key, c in changes) == [
        (b"generic:acme-wa:42", "generic:acme-wa:42", "acme-wa", "sent"),
        (b"generic:default:42", "generic:default:42", "default", "read"),
        (b"generic:globex-wa:42", "generic:globex-wa:42", "globex-wa", "delivered"),
    ]
    assert len({c["change_id"] for _, c in changes}) == 3
