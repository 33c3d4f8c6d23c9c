"""The receiver against the real broker: every provider's happy path, every refusal audited."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import parse_qsl

import aiohttp
import jwt
import pytest
from aiohttp.test_utils import TestServer

from receiver.app import create_app
from receiver.auth import twilio_signature
from receiver.settings import ReceiverSettings
from schemas.channels import ChannelsConfig, parse_channels
from schemas.codec import codec
from schemas.envelope import RawWebhook
from schemas.settings import KafkaSettings
from schemas.topics import ensure_topics
from tests.factories import FIXTURES
from tests.integration.helpers import consume

SECRET = "integration-secret-0123456789abcdef"
JSON = "application/json"
FORM = "application/x-www-form-urlencoded"
CHANNELS: ChannelsConfig = parse_channels(
    {
        "channels": [
            {"name": "wa", "provider": "meta", "auth": {"kind": "meta_hmac", "secret": SECRET}},
            {"name": "sms", "provider": "twilio", "auth": {"kind": "twilio_signature", "secret": SECRET}},
            {
                "name": "ib",
                "provider": "infobip",
                "auth": {"kind": "header_token", "header": "Authorization", "secret": f"App {SECRET}"},
            },
            {"name": "vg", "provider": "vonage", "auth": {"kind": "vonage_jwt", "secret": SECRET}},
            {"name": "gs", "provider": "gupshup", "auth": {"kind": "header_token", "secret": SECRET}},
            {"name": "av", "provider": "aivo", "auth": {"kind": "header_token", "secret": SECRET}},
            {
                "name": "wn",
                "provider": "weni",
                "auth": {"kind": "header_token", "header": "X-Weni-Token", "secret": SECRET},
            },
            {"name": "wp", "provider": "wpp", "auth": {"kind": "basic", "username": "wpp", "secret": SECRET}},
            {"name": "gen", "provider": "generic", "auth": {"kind": "header_token", "secret": SECRET}},
        ]
    },
    {},
)


@pytest.fixture
async def receiver(kafka_settings: KafkaSettings, tmp_path: Path) -> AsyncIterator[str]:
    await ensure_topics(kafka_settings)
    settings = ReceiverSettings(**kafka_settings.model_dump(), spool_dir=tmp_path / "spool", max_body_bytes=64 * 1024)
    server = TestServer(create_app(settings, channels=CHANNELS), host="127.0.0.1")
    await server.start_server()
    try:
        yield str(server.make_url("")).rstrip("/")
    finally:
        await server.close()


def _happy_cases(base: str) -> list[tuple[str, bytes, dict[str, str]]]:
    meta = (FIXTURES / "meta" / "status_delivered.json").read_bytes()
    twilio = (FIXTURES / "twilio" / "status_read.form").read_bytes()
    twilio_url = f"{base}/webhooks/twilio/sms"
    vonage = (FIXTURES / "vonage" / "status_delivered.json").read_bytes()
    vonage_claims = {"iat": int(time.time()), "payload_hash": hashlib.sha256(vonage).hexdigest(), "api_key": "k"}
    token = {"Content-Type": JSON, "x-auth-token": SECRET}
    return [
        (
            "/webhooks/meta/wa",
            meta,
            {
                "Content-Type": JSON,
                "X-Hub-Signature-256": "sha256=" + hmac.new(SECRET.encode(), meta, hashlib.sha256).hexdigest(),
            },
        ),
        (
            "/webhooks/twilio/sms",
            twilio,
            {
                "Content-Type": FORM,
                "X-Twilio-Signature": twilio_signature(
                    SECRET, twilio_url, parse_qsl(twilio.decode(), keep_blank_values=True)
                ),
            },
        ),
        (
            "/webhooks/infobip/ib",
            (FIXTURES / "infobip" / "report_seen.json").read_bytes(),
            {"Content-Type": JSON, "Authorization": f"App {SECRET}"},
        ),
        (
            "/webhooks/vonage/vg",
            vonage,
            {"Content-Type": JSON, "Authorization": "Bearer " + jwt.encode(vonage_claims, SECRET, algorithm="HS256")},
        ),
        (
            "/webhooks/gupshup/gs",
            b'{"app":"demo","type":"message-event","payload":{"id":"g-1","type":"enqueued"}}',
            token,
        ),
        ("/webhooks/aivo/av", b'{"id":"a-1","status":"sent"}', token),
        ("/webhooks/weni/wn", b'{"id":"w-1","status":"read"}', {"Content-Type": JSON, "X-Weni-Token": SECRET}),
        (
            "/webhooks/wpp/wp",
            b'{"id":"p-1","ack":3}',
            {"Content-Type": JSON, "Authorization": "Basic " + base64.b64encode(f"wpp:{SECRET}".encode()).decode()},
        ),
        ("/webhooks/generic/gen", b'{"id":"x-1","status":"delivered"}', token),
    ]


async def test_every_providers_webhook_reaches_the_raw_log_byte_for_byte(
    receiver: str, kafka_settings: KafkaSettings
) -> None:
    sent: dict[str, tuple[str, bytes]] = {}
    async with aiohttp.ClientSession() as http:
        for path, body, headers in _happy_cases(receiver):
            async with http.post(receiver + path, data=body, headers=headers) as response:
                assert response.status == 200, (path, await response.text())
                accepted = await response.json()
                assert accepted["durable"] == "kafka"
                sent[accepted["request_id"]] = (path, body)
    records = await consume(
        kafka_settings.bootstrap_servers, kafka_settings.topics.raw, until=lambda rs: len(rs) >= len(sent), within=60
    )
    got = {key.decode(): RawWebhook.from_avro(value) for key, value in records if key is not None}
    assert set(got) == set(sent)
    for request_id, (path, body) in sent.items():
        raw = got[request_id]
        assert raw.body == body
        assert f"/webhooks/{raw.provider}/{raw.channel}" == path
        assert SECRET not in repr(raw)


async def test_every_refusal_gets_its_status_and_an_audit_record(receiver: str, kafka_settings: KafkaSettings) -> None:
    meta = (FIXTURES / "meta" / "status_sent.json").read_bytes()
    cases = [
        ("POST", "/webhooks/meta/wa", meta, {"Content-Type": JSON, "X-Hub-Signature-256": "sha256=" + "0" * 64}, 401),
        ("POST", "/webhooks/aivo/av", b"{}", {"Content-Type": JSON}, 401),
        ("POST", "/webhooks/meta/nope", meta, {"Content-Type": JSON}, 404),
        ("POST", "/webhooks/telegram/wa", meta, {"Content-Type": JSON}, 404),
        ("PUT", "/webhooks/meta/wa", meta, {"Content-Type": JSON}, 405),
        ("POST", "/webhooks/meta/wa", b"{" + b" " * 70_000 + b"}", {"Content-Type": JSON}, 413),
        ("POST", "/webhooks/meta/wa", meta, {"Content-Type": "application/xml"}, 415),
        ("POST", "/webhooks/meta/wa", b"x=1", {"Content-Type": "text/plain"}, 415),
        ("POST", "/webhooks/aivo/av", b"{not json", {"Content-Type": JSON, "x-auth-token": SECRET}, 400),
        ("POST", "/webhooks/twilio/sms", b"a&&=", {"Content-Type": FORM}, 400),
    ]
    expected: dict[str, int] = {}
    async with aiohttp.ClientSession() as http:
        for method, path, body, headers, status in cases:
            async with http.request(method, receiver + path, data=body, headers=headers) as response:
                assert response.status == status, (path, await response.text())
                error = await response.json()
                assert error["error"]
                expected[error["request_id"]] = status
    audit_codec = codec("audit_record")
    records = await consume(
        kafka_settings.bootstrap_servers,
        kafka_settings.topics.audit,
        until=lambda rs: len(rs) >= len(expected),
        within=60,
    )
    audits = {key.decode(): audit_codec.decode(value) for key, value in records if key is not None}
    assert {request_id: a["http_status"] for request_id, a in audits.items()} == expected
    assert all(a["outcome"] == "rejected" and a["stage"] == "receiver" for a in audits.values())
    assert all(SECRET not in (a["payload_excerpt"] or "") + (a["detail"] or "") for a in audits.values())
