"""The dashboard of a deployment with tenants, in headless Chromium against the real stack.

Receiver, worker and dashboard share a channels file with tenants `acme` (channel `acme-wa`)
and `globex` (`globex-wa`). The page asks for a token; a wrong one is refused; acme's token
shows acme's channel only, live (the event stream read with fetch and the bearer header); the
token is kept in the tab's sessionStorage, never in a URL; signing out asks again. Over HTTP,
the snapshot and the stream answer 401 without a token and a tenant's snapshot names none of
the other tenant's channels, while the operator's names both.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest
from aiohttp.test_utils import TestServer
from playwright.async_api import async_playwright

from devkit.kafka_local import free_port
from receiver.app import create_app
from receiver.settings import ReceiverSettings
from schemas.channels import load_channels
from schemas.settings import KafkaSettings
from schemas.topics import ensure_topics
from tests.integration.conftest import REPO, WorkerFactory
from tests.integration.helpers import wait_until
from tests.integration.test_dashboard_browser import CHROMIUM, NO_RETENTION
from tests.integration.test_tenants import ACME_SECRET, ACME_TOKEN, CHANNELS, ENV, GLOBEX_SECRET, OPERATOR_TOKEN, T


@pytest.fixture
def channels_file(tmp_path: Path) -> Path:
    path = tmp_path / "channels.toml"
    path.write_text(CHANNELS, encoding="utf-8")
    return path


@pytest.fixture
async def receiver(kafka_settings: KafkaSettings, tmp_path: Path, channels_file: Path) -> AsyncIterator[str]:
    await ensure_topics(kafka_settings)
    settings = ReceiverSettings(**kafka_settings.model_dump(), spool_dir=tmp_path / "spool")
    channels = load_channels(channels_file, {**os.environ, **ENV})
    server = TestServer(create_app(settings, channels=channels), host="127.0.0.1")
    await server.start_server()
    try:
        yield str(server.make_url("")).rstrip("/")
    finally:
        await server.close()


@pytest.fixture
async def dashboard(
    kafka_settings: KafkaSettings, unique_id: str, receiver: str, channels_file: Path, tmp_path: Path
) -> AsyncIterator[str]:
    """`python -m dashboard` with the tenants' channels file."""
    port = free_port()
    env = {
        **os.environ,
        **ENV,
        "KAFKA_BOOTSTRAP_SERVERS": kafka_settings.bootstrap_servers,
        "STATUSFLOW_APP_ID": f"statusflow-{unique_id}",
        "STATUSFLOW_DASHBOARD_PORT": str(port),
        "STATUSFLOW_DASHBOARD_REFRESH_S": "1",
        "STATUSFLOW_DASHBOARD_RECEIVER_METRICS": f"{receiver}/metrics",
        "STATUSFLOW_CHANNELS_FILE": str(channels_file),
        **{f"STATUSFLOW_TOPIC_{k.upper()}": v for k, v in kafka_settings.topics.model_dump().items()},
    }
    log = tmp_path / "dashboard.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(  # noqa: ASYNC220 - a long-lived child like the workers; Popen returns at once
            [sys.executable, "-m", "dashboard"], cwd=REPO, env=env, stdout=out, stderr=out
        )
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        # Whatever happened, the log never holds a token.
        text = log.read_text(errors="replace")
        assert ACME_TOKEN not in text and OPERATOR_TOKEN not in text


async def _snapshot(http: aiohttp.ClientSession, url: str, token: str | None) -> tuple[int, Any]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        async with http.get(f"{url}/api/snapshot", headers=headers) as response:
            return response.status, (await response.json() if response.status == 200 else None)
    except aiohttp.ClientError:
        return 0, None  # not serving yet


def _channels(snapshot: dict[str, Any]) -> set[str]:
    return {row["key"] for row in snapshot["funnel"]["channels"]}


async def _http_checks(http: aiohttp.ClientSession, dashboard: str) -> None:
    """Without a token: 401 with the Bearer challenge; with acme's: acme's channels only."""
    assert (await _snapshot(http, dashboard, None))[0] == 401
    code, acme = await _snapshot(http, dashboard, ACME_TOKEN)
    assert code == 200 and _channels(acme) == {"generic:acme-wa"}
    assert "globex" not in orjson.dumps(acme).decode()
    async with http.get(f"{dashboard}/api/stream") as response:
        assert response.status == 401
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
    async with http.get(f"{dashboard}/healthz") as response:
        assert response.status == 200


async def test_a_tenant_signs_in_and_sees_its_channels_only(
    receiver: str, dashboard: str, channels_file: Path, start_worker: WorkerFactory
) -> None:
    start_worker(STATUSFLOW_CHANNELS_FILE=str(channels_file), **ENV, **NO_RETENTION)
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as http:
        for channel, secret, status in (("acme-wa", ACME_SECRET, "sent"), ("globex-wa", GLOBEX_SECRET, "delivered")):
            body = orjson.dumps({"id": "42", "status": status, "timestamp": T})
            headers = {"Content-Type": "application/json", "x-auth-token": secret}
            async with http.post(f"{receiver}/webhooks/generic/{channel}", data=body, headers=headers) as response:
                assert response.status == 200, await response.text()

        async def both_shown() -> dict[str, Any] | None:
            code, snapshot = await _snapshot(http, dashboard, OPERATOR_TOKEN)
            wanted = {"generic:acme-wa", "generic:globex-wa"}
            return snapshot if code == 200 and _channels(snapshot) == wanted else None

        await wait_until(both_shown, within=120, what="the operator's snapshot to show both channels")
        await _http_checks(http, dashboard)

    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM)
        try:
            page = await browser.new_page(viewport={"width": 1366, "height": 900})
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            requested: list[str] = []
            page.on("request", lambda request: requested.append(request.url))
            await page.goto(dashboard)
            await page.wait_for_selector("#login:not([hidden])")
            assert await page.is_hidden("main")

            await page.fill("#token", "not-a-token-of-this-deployment")
            await page.click("#login button[type=submit]")
            await page.wait_for_function(
                "document.getElementById('login-note').textContent === 'The token was refused.'"
            )

            await page.fill("#token", ACME_TOKEN)
            await page.click("#login button[type=submit]")
            await page.wait_for_selector('#funnel-channels tr[data-scope="generic:acme-wa"]')
            # Live over the fetch-read event stream: the second snapshot on comes from it.
            await page.wait_for_function("document.getElementById('live').textContent === 'live'")
            shown = await page.eval_on_selector_all(
                "#funnel-channels tr[data-scope]", "rows => rows.map(r => r.dataset.scope)"
            )
            assert set(shown) - {"all"} == {"generic:acme-wa"}
            options = await page.eval_on_selector_all("#scope option", "options => options.map(o => o.value)")
            assert options == ["all", "generic:acme-wa"]
            assert "globex" not in await page.inner_text("body")
            assert await page.evaluate("sessionStorage.getItem('statusflow.dashboard.token')") == ACME_TOKEN
            assert not any(ACME_TOKEN in url for url in requested)

            await page.click("#sign-out")
            await page.wait_for_selector("#login:not([hidden])")
            assert await page.evaluate("sessionStorage.getItem('statusflow.dashboard.token')") is None
            assert errors == []
        finally:
            await browser.close()
