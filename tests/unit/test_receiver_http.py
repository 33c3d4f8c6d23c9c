"""The receiver's HTTP contract, with a recording publisher in place of the broker.

The durable path against the real broker is covered in tests/integration.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from pydantic import SecretStr

from receiver.app import create_app
from receiver.publisher import PublishError
from receiver.settings import ReceiverSettings
from schemas.codec import codec
from schemas.envelope import RawWebhook
from tests.factories import FIXTURES
from tests.integration.helpers import wait_until

BODY = (FIXTURES / "meta" / "status_sent.json").read_bytes()
JSON = {"Content-Type": "application/json"}


class RecordingPublisher:
    """Keeps what was published; can be told to fail like an unreachable broker."""

    def __init__(self) -> None:
        self.records: list[tuple[str, bytes, bytes]] = []
        self.fail = False

    async def publish(self, topic: str, key: bytes, value: bytes) -> None:
        if self.fail and topic.endswith("raw"):
            raise PublishError("broker down")
        self.records.append((topic, key, value))

    def on(self, topic: str) -> list[tuple[bytes, bytes]]:
        return [(k, v) for t, k, v in self.records if t == topic]


ClientFactory = Callable[..., Any]


@pytest.fixture
async def make_client(tmp_path: Path) -> AsyncIterator[ClientFactory]:
    clients: list[TestClient[Any, Any]] = []

    async def factory(**overrides: Any) -> tuple[TestClient[Any, Any], RecordingPublisher]:
        publisher = RecordingPublisher()
        settings = ReceiverSettings(**{"max_body_bytes": 4096, "spool_dir": tmp_path / "spool", **overrides})
        client: TestClient[Any, Any] = TestClient(TestServer(create_app(settings, publisher)))
        await client.start_server()
        clients.append(client)
        return client, publisher

    yield factory
    for client in clients:
        await client.close()


async def test_accepted_webhook_is_published_as_the_raw_envelope(make_client: ClientFactory) -> None:
    client, publisher = await make_client()
    response = await client.post("/webhooks/meta/shop-br", data=BODY, headers=JSON)
    assert response.status == 200
    request_id = (await response.json())["request_id"]
    ((key, value),) = publisher.on("wa.webhooks.raw")
    raw = RawWebhook.from_avro(value)
    assert key == request_id.encode()
    assert raw.body == BODY
    assert (raw.provider, raw.channel, raw.content_type) == ("meta", "shop-br", "application/json")


@pytest.mark.parametrize(
    ("method", "path", "body", "headers", "status"),
    [
        ("POST", "/webhooks/nope", b"{}", JSON, 404),
        ("POST", "/webhooks/meta", b"x=1", {"Content-Type": "text/plain"}, 415),
        ("POST", "/webhooks/meta", b"{not json", JSON, 400),
        ("POST", "/webhooks/twilio", b"MessageSid&&=", {"Content-Type": "application/x-www-form-urlencoded"}, 400),
        ("PUT", "/webhooks/meta", BODY, JSON, 405),
        ("POST", "/webhooks/meta", b"{" + b" " * 5000 + b"}", JSON, 413),
    ],
)
async def test_bad_requests_get_their_4xx_a_json_error_and_an_audit_record(
    make_client: ClientFactory, method: str, path: str, body: bytes, headers: dict[str, str], status: int
) -> None:
    client, publisher = await make_client()
    response = await client.request(method, path, data=body, headers=headers)
    assert response.status == status
    error = await response.json()
    assert error["error"]
    assert publisher.on("wa.webhooks.raw") == []
    ((key, value),) = publisher.on("wa.audit")
    audit = codec("audit_record").decode(value)
    assert (audit["http_status"], audit["outcome"], audit["stage"]) == (status, "rejected", "receiver")
    assert key == error["request_id"].encode()


async def test_meta_signature_is_verified_when_an_app_secret_is_set(make_client: ClientFactory) -> None:
    client, publisher = await make_client(meta_app_secret=SecretStr("s3cret"))
    good = "sha256=" + hmac.new(b"s3cret", BODY, hashlib.sha256).hexdigest()
    ok = await client.post("/webhooks/meta", data=BODY, headers={**JSON, "X-Hub-Signature-256": good})
    forged = await client.post(
        "/webhooks/meta", data=BODY, headers={**JSON, "X-Hub-Signature-256": "sha256=" + "0" * 64}
    )
    missing = await client.post("/webhooks/meta", data=BODY, headers=JSON)
    assert (ok.status, forged.status, missing.status) == (200, 401, 401)
    assert len(publisher.on("wa.webhooks.raw")) == 1
    assert "s3cret" not in str(publisher.records)


async def test_unsigned_webhooks_are_refused_when_development_mode_is_off(make_client: ClientFactory) -> None:
    client, _ = await make_client(allow_unauthenticated_loopback=False)
    response = await client.post("/webhooks/meta", data=BODY, headers=JSON)
    assert response.status == 401


async def test_broker_outage_without_a_spool_is_503_with_retry_after_not_a_false_200(
    make_client: ClientFactory,
) -> None:
    client, publisher = await make_client(spool_enabled=False)
    publisher.fail = True
    response = await client.post("/webhooks/meta", data=BODY, headers=JSON)
    assert response.status == 503
    assert response.headers["Retry-After"] == "5"


async def test_broker_outage_spools_then_drains_in_order_once_the_broker_is_back(make_client: ClientFactory) -> None:
    client, publisher = await make_client()
    publisher.fail = True
    ids = []
    for _ in range(3):
        response = await client.post("/webhooks/meta", data=BODY, headers=JSON)
        assert response.status == 200
        accepted = await response.json()
        assert accepted["durable"] == "spool"
        ids.append(accepted["request_id"])
    ready = await client.get("/readyz")
    assert (ready.status, (await ready.json())["broker"]) == (200, "down")
    metrics = await (await client.get("/metrics")).text()
    assert "statusflow_receiver_spool_records 3.0" in metrics
    publisher.fail = False

    async def drained() -> bool | None:
        # The drainer hands the last record over before it marks the broker up again: wait
        # for both, or the next webhook may still (correctly) take the spool path.
        if len(publisher.on("wa.webhooks.raw")) != 3:
            return None
        ready = await client.get("/readyz")
        return True if (await ready.json())["broker"] == "up" else None

    await wait_until(drained, within=10, what="the spool drained into the publisher")
    assert [key.decode() for key, _ in publisher.on("wa.webhooks.raw")] == ids
    assert [RawWebhook.from_avro(v).body for _, v in publisher.on("wa.webhooks.raw")] == [BODY] * 3
    after = await client.post("/webhooks/meta", data=BODY, headers=JSON)
    assert (await after.json())["durable"] == "kafka"
    metrics = await (await client.get("/metrics")).text()
    assert "statusflow_receiver_spool_records 0.0" in metrics
    assert "statusflow_receiver_broker_up 1.0" in metrics


async def test_full_spool_is_503_with_retry_after(make_client: ClientFactory) -> None:
    client, publisher = await make_client(spool_max_bytes=4096, retry_after_s=7)
    publisher.fail = True
    statuses = []
    for _ in range(8):
        response = await client.post("/webhooks/meta", data=BODY, headers=JSON)
        statuses.append(response.status)
    assert statuses[0] == 200
    assert statuses[-1] == 503
    assert statuses == sorted(statuses)  # once full, full until drained
    assert response.headers["Retry-After"] == "7"


async def test_meta_verification_handshake(make_client: ClientFactory) -> None:
    client, _ = await make_client(meta_verify_token=SecretStr("tok"))
    query = {"hub.mode": "subscribe", "hub.challenge": "1158201444", "hub.verify_token": "tok"}
    ok = await client.get("/webhooks/meta", params=query)
    wrong = await client.get("/webhooks/meta", params={**query, "hub.verify_token": "nope"})
    assert ok.status == 200
    assert await ok.text() == "1158201444"
    assert wrong.status == 403


async def test_metrics_count_requests_by_provider_and_code(make_client: ClientFactory) -> None:
    client, _ = await make_client()
    await client.post("/webhooks/meta", data=BODY, headers=JSON)
    await client.post("/webhooks/meta", data=b"{", headers=JSON)
    text = await (await client.get("/metrics")).text()
    assert 'statusflow_receiver_requests_total{channel="default",code="200",provider="meta"} 1.0' in text
    assert 'statusflow_receiver_requests_total{channel="default",code="400",provider="meta"} 1.0' in text
