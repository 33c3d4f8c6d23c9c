"""Operations: the OpenAPI document covers every route, logs are JSON with masked numbers, readiness."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiohttp.test_utils import TestClient, TestServer

from receiver.app import create_app
from receiver.logs import REQUEST_ID_VAR, JsonFormatter, MaskingFormatter
from receiver.openapi import document
from receiver.providers import PROVIDERS
from receiver.settings import ReceiverSettings
from schemas.privacy import mask_numbers
from tests.unit.test_receiver_http import RecordingPublisher


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[TestClient[Any, Any]]:
    settings = ReceiverSettings(spool_dir=tmp_path / "spool")
    test_client: TestClient[Any, Any] = TestClient(TestServer(create_app(settings, RecordingPublisher())))
    await test_client.start_server()
    yield test_client
    await test_client.close()


def test_every_registered_route_is_in_the_openapi_document(tmp_path: Path) -> None:
    app = create_app(ReceiverSettings(spool_dir=tmp_path), RecordingPublisher())
    paths = document()["paths"]
    # The document spells `{provider}` out (content types and methods differ per provider): a
    # webhook method is described where the provider takes it (elsewhere it is 405), GET is Meta's
    # handshake alone.
    routes = {
        (route.method.lower(), route.resource.canonical.replace("{provider}", provider))
        for route in app.router.routes()
        if route.resource
        for provider in (PROVIDERS if "{provider}" in route.resource.canonical else [""])
        if provider == "" or route.method in PROVIDERS[provider].methods or (route.method, provider) == ("GET", "meta")
    }
    assert routes
    for method, path in routes:
        assert method in paths.get(path, {}), f"{method.upper()} {path} is not in /openapi.json"
    described = {(method, path) for path, item in paths.items() for method in item if method != "parameters"}
    assert described == routes  # and nothing is described that is not served


async def test_openapi_json_is_served(client: TestClient[Any, Any]) -> None:
    response = await client.get("/openapi.json")
    assert response.status == 200
    assert (await response.json())["openapi"].startswith("3.1")


async def test_readyz_and_healthz(client: TestClient[Any, Any]) -> None:
    assert (await client.get("/healthz")).status == 200
    ready = await client.get("/readyz")
    assert (ready.status, await ready.json()) == (200, {"status": "ready", "broker": "up"})


async def test_readyz_is_503_when_neither_broker_nor_spool_can_take_webhooks(tmp_path: Path) -> None:
    publisher = RecordingPublisher()
    publisher.fail = True
    settings = ReceiverSettings(spool_enabled=False)
    client: TestClient[Any, Any] = TestClient(TestServer(create_app(settings, publisher)))
    await client.start_server()
    try:
        response = await client.post("/webhooks/meta", data=b"{}", headers={"Content-Type": "application/json"})
        assert response.status == 503
        assert (await client.get("/readyz")).status == 503
    finally:
        await client.close()


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("to +5511987654321 failed", "to +*********4321 failed"),
        ("recipient 14155550100", "recipient *******0100"),
        (
            "wamid.HBgLMTY1MDM4Nzk0MzkVAgARGBJDQjZCMzlEQUE4OTJBMTE4RTUA",
            "wamid.HBgLMTY1MDM4Nzk0MzkVAgARGBJDQjZCMzlEQUE4OTJBMTE4RTUA",
        ),
        ("request 3f2a9c0d8e7b4a1f9c0d8e7b4a1f9c0d", "request 3f2a9c0d8e7b4a1f9c0d8e7b4a1f9c0d"),
        ("code 470 at 12:00", "code 470 at 12:00"),
    ],
)
def test_phone_numbers_are_masked(text: str, masked: str) -> None:
    assert mask_numbers(text) == masked


def _record(message: str, *args: object) -> logging.LogRecord:
    return logging.LogRecord("receiver.handlers", logging.INFO, __file__, 1, message, args, None)


def test_json_logs_carry_the_request_id_and_mask_numbers() -> None:
    token = REQUEST_ID_VAR.set("req-123")
    try:
        line = JsonFormatter().format(_record("status for %s is %s", "+5511987654321", "read"))
        text = MaskingFormatter("%(message)s").format(_record("to %s", "5511987654321"))
    finally:
        REQUEST_ID_VAR.reset(token)
    entry = orjson.loads(line)
    assert entry["message"] == "status for +*********4321 is read"
    assert (entry["request_id"], entry["level"], entry["logger"]) == ("req-123", "info", "receiver.handlers")
    assert entry["ts"].endswith("+00:00")
    assert text == "to *********4321 request_id=req-123"
    assert "request_id" not in orjson.loads(JsonFormatter().format(_record("outside a request")))


async def test_metrics_expose_publish_latency_and_bounded_labels(client: TestClient[Any, Any]) -> None:
    await client.post("/webhooks/meta", data=b"{}", headers={"Content-Type": "application/json"})
    await client.post("/webhooks/whatever-an-attacker-wants", data=b"{}", headers={"Content-Type": "application/json"})
    text = await (await client.get("/metrics")).text()
    assert 'statusflow_receiver_publish_seconds_count{destination="kafka"} 1.0' in text
    assert 'statusflow_receiver_requests_total{channel="-",code="404",provider="-"} 1.0' in text
    assert "whatever-an-attacker-wants" not in text
