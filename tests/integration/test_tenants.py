"""Issue 17, Tenants, on a real broker, receiver and worker: with `[[tenants]]` in the channels
file the worker's API answers a bearer token only. Two `generic` channels, `acme-wa` of tenant
`acme` and `globex-wa` of tenant `globex`, both get a message `42`: each tenant's token reads
its own message, channel and funnel and gets 404 for the other's; no token and a wrong token get
401 with a Bearer challenge; the operator's token reads both. Health and metrics stay open, and
/metrics counts requests and dead letters by tenant."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest
from aiohttp.test_utils import TestServer

from receiver.app import create_app
from receiver.settings import ReceiverSettings
from schemas.channels import ChannelsConfig, load_channels
from schemas.settings import KafkaSettings
from schemas.topics import ensure_topics
from tests.integration.conftest import WorkerFactory
from tests.integration.helpers import wait_until

ACME_SECRET = "acme-webhook-secret-0123456789"
GLOBEX_SECRET = "globex-webhook-secret-0123456789"
ACME_TOKEN = "acme-api-token-0123456789abcdef"
GLOBEX_TOKEN = "globex-api-token-0123456789abcdef"  # from the environment, as an operator would
OPERATOR_TOKEN = "operator-api-token-0123456789abcdef"
T = 1_750_030_000

CHANNELS = f"""
[[tenants]]
name = "acme"
api_token = "{ACME_TOKEN}"

[[tenants]]
name = "globex"

[[channels]]
name = "acme-wa"
provider = "generic"
tenant = "acme"
[channels.auth]
kind = "header_token"
secret = "{ACME_SECRET}"

[[channels]]
name = "globex-wa"
provider = "generic"
tenant = "globex"
[channels.auth]
kind = "header_token"
secret = "{GLOBEX_SECRET}"
"""
ENV = {"STATUSFLOW_TENANT_GLOBEX_TOKEN": GLOBEX_TOKEN, "STATUSFLOW_OPERATOR_TOKEN": OPERATOR_TOKEN}


@pytest.fixture
def channels_file(tmp_path: Path) -> Path:
    path = tmp_path / "channels.toml"
    path.write_text(CHANNELS, encoding="utf-8")
    return path


@pytest.fixture
def channels(channels_file: Path) -> ChannelsConfig:
    return load_channels(channels_file, {**os.environ, **ENV})


@pytest.fixture
async def receiver(kafka_settings: KafkaSettings, tmp_path: Path, channels: ChannelsConfig) -> AsyncIterator[str]:
    await ensure_topics(kafka_settings)
    settings = ReceiverSettings(**kafka_settings.model_dump(), spool_dir=tmp_path / "spool")
    server = TestServer(create_app(settings, channels=channels), host="127.0.0.1")
    await server.start_server()
    try:
        yield str(server.make_url("")).rstrip("/")
    finally:
        await server.close()


async def _post(http: aiohttp.ClientSession, url: str, body: dict[str, Any], secret: str) -> None:
    headers = {"Content-Type": "application/json", "x-auth-token": secret}
    async with http.post(url, data=orjson.dumps(body), headers=headers) as response:
        assert response.status == 200, await response.text()


def _bearer(token: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"} if token is not None else {}


async def _get(http: aiohttp.ClientSession, url: str, token: str | None) -> tuple[int, Any, str | None]:
    try:
        async with http.get(url, headers=_bearer(token)) as response:
            body = await response.json() if response.content_type == "application/json" else await response.text()
            return response.status, body, response.headers.get("WWW-Authenticate")
    except aiohttp.ClientError:
        return 0, None, None  # the worker's web server is not up yet


async def _text(http: aiohttp.ClientSession, url: str) -> str | None:
    try:
        async with http.get(url) as response:
            return await response.text() if response.status == 200 else None
    except aiohttp.ClientError:
        return None


async def test_each_tenant_reads_its_own_channels_only(
    receiver: str, channels_file: Path, start_worker: WorkerFactory
) -> None:
    process = start_worker(STATUSFLOW_CHANNELS_FILE=str(channels_file), **ENV)
    worker = process.url
    acme_message, globex_message = f"{worker}/messages/generic/acme-wa/42", f"{worker}/messages/generic/globex-wa/42"
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as http:
        await _post(
            http, f"{receiver}/webhooks/generic/acme-wa", {"id": "42", "status": "sent", "timestamp": T}, ACME_SECRET
        )
        await _post(
            http,
            f"{receiver}/webhooks/generic/globex-wa",
            {"id": "42", "status": "read", "timestamp": T},
            GLOBEX_SECRET,
        )
        # A report without a status word: dead-lettered, counted for acme.
        await _post(http, f"{receiver}/webhooks/generic/acme-wa", {"id": "43", "timestamp": T}, ACME_SECRET)

        async def both_tracked() -> tuple[Any, Any] | None:
            acme = await _get(http, acme_message, OPERATOR_TOKEN)
            globex = await _get(http, globex_message, OPERATOR_TOKEN)
            return (acme[1], globex[1]) if acme[0] == globex[0] == 200 else None

        acme_state, globex_state = await wait_until(both_tracked, within=90, what="both messages 42 tracked")
        assert (acme_state["channel"], acme_state["status"]) == ("acme-wa", "sent")
        assert (globex_state["channel"], globex_state["status"]) == ("globex-wa", "read")

        # Each tenant reads its own message; the other's is unknown to it, exactly as a message
        # that does not exist is.
        assert (await _get(http, acme_message, ACME_TOKEN))[:2] == (200, acme_state)
        assert (await _get(http, globex_message, GLOBEX_TOKEN))[:2] == (200, globex_state)
        for url, token in ((globex_message, ACME_TOKEN), (acme_message, GLOBEX_TOKEN)):
            code, body, _ = await _get(http, url, token)
            assert code == 404 and body["error"] == "unknown message", (url, code, body)
            code, body, _ = await _get(http, f"{url}/history", token)
            assert code == 404 and body["error"] == "unknown message"
        assert (await _get(http, f"{acme_message}/history", ACME_TOKEN))[0] == 200
        # The form without a channel names the channel `default`, which is nobody's here.
        assert (await _get(http, f"{worker}/messages/generic/42", ACME_TOKEN))[0] == 404

        # No token, a wrong token, a token of another scheme: 401 with the Bearer challenge.
        refusals: tuple[tuple[str | None, str], ...] = (
            (None, 'Bearer realm="statusflow"'),
            ("not-a-token-of-this-deployment", 'Bearer realm="statusflow", error="invalid_token"'),
        )
        for given, challenge in refusals:
            for url in (acme_message, f"{acme_message}/history", f"{worker}/channels/generic/acme-wa"):
                code, body, header = await _get(http, url, given)
                assert (code, header) == (401, challenge), (url, code, body)
                assert ACME_TOKEN not in str(body)
        async with http.get(acme_message, headers={"Authorization": f"Basic {ACME_TOKEN}"}) as response:
            assert response.status == 401

        # Channels and funnels: the tenant's own, 404 for the other's, the operator both.
        async def channel_known() -> bool | None:
            code = (await _get(http, f"{worker}/channels/generic/globex-wa", OPERATOR_TOKEN))[0]
            return True if code == 200 else None

        await wait_until(channel_known, within=60, what="globex-wa's channel state")
        for kind in ("channels", "funnel"):
            assert (await _get(http, f"{worker}/{kind}/generic/globex-wa", GLOBEX_TOKEN))[0] == 200
            assert (await _get(http, f"{worker}/{kind}/generic/globex-wa", ACME_TOKEN))[0] == 404
            assert (await _get(http, f"{worker}/{kind}/generic/acme-wa", GLOBEX_TOKEN))[0] == 404
            assert (await _get(http, f"{worker}/{kind}/generic/globex-wa", OPERATOR_TOKEN))[0] == 200

        # Faust's own pages are the operator's.
        assert (await _get(http, f"{worker}/router/", ACME_TOKEN))[0] == 404

        # Health, readiness and metrics stay open; /metrics counts per tenant.
        assert (await _get(http, f"{worker}/healthz", None))[0] == 200
        assert (await _get(http, f"{worker}/readyz", None))[0] in {200, 503}

        async def dead_letter_counted() -> str | None:
            text = await _text(http, f"{worker}/metrics")
            wanted = 'statusflow_worker_tenant_dead_letters_total{tenant="acme"} 1.0'
            return text if text is not None and wanted in text else None

        worker_metrics = await wait_until(dead_letter_counted, within=60, what="acme's dead letter on /metrics")
        assert (
            'tenant="globex"'
            not in worker_metrics.split("statusflow_worker_tenant_dead_letters_total", 1)[1].split("# HELP", 1)[0]
        )
        receiver_metrics = await _text(http, f"{receiver}/metrics")
        assert receiver_metrics is not None
        assert 'statusflow_receiver_tenant_requests_total{code="200",tenant="acme"} 2.0' in receiver_metrics
        assert 'statusflow_receiver_tenant_requests_total{code="200",tenant="globex"} 1.0' in receiver_metrics
    # Refusals were logged (the principal, never the header); no token ever was.
    log = process.log.read_text(errors="replace")
    assert "refused GET" in log
    assert not any(token in log for token in (ACME_TOKEN, GLOBEX_TOKEN, OPERATOR_TOKEN))
