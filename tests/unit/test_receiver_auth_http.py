"""Every auth kind through HTTP: 200 with the right credentials, 401 without, secrets never kept."""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode

import jwt
import pytest
from aiohttp.test_utils import TestClient, TestServer

from receiver.app import create_app
from receiver.auth import twilio_signature
from receiver.settings import ReceiverSettings
from schemas.channels import parse_channels
from schemas.codec import codec
from schemas.envelope import RawWebhook
from tests.factories import FIXTURES
from tests.unit.test_receiver_http import RecordingPublisher

META_SECRET = "meta-app-secret-0123456789abcdef"
TWILIO_TOKEN = "twilio-auth-token-0123456789abcd"
VONAGE_SECRET = "vonage-signature-secret-0123456789"
TOKEN = "static-token-0123456789"
PASSWORD = "basic-password-0123"
SECRETS = (META_SECRET, TWILIO_TOKEN, VONAGE_SECRET, TOKEN, PASSWORD)

CHANNELS = parse_channels(
    {
        "channels": [
            {"name": "wa", "provider": "meta", "auth": {"kind": "meta_hmac", "secret": META_SECRET}},
            {"name": "sms", "provider": "twilio", "auth": {"kind": "twilio_signature", "secret": TWILIO_TOKEN}},
            {
                "name": "pub",
                "provider": "twilio",
                "public_url": "https://hooks.example.com/statusflow",
                "auth": {"kind": "twilio_signature", "secret": TWILIO_TOKEN},
            },
            {"name": "vg", "provider": "vonage", "auth": {"kind": "vonage_jwt", "secret": VONAGE_SECRET}},
            {"name": "av", "provider": "aivo", "auth": {"kind": "header_token", "secret": TOKEN}},
            {
                "name": "wn",
                "provider": "weni",
                "auth": {"kind": "header_token", "header": "X-Weni-Key", "secret": TOKEN},
            },
            {"name": "wp", "provider": "wpp", "auth": {"kind": "basic", "username": "wpp", "secret": PASSWORD}},
        ]
    },
    {},
)

JSON = "application/json"
FORM = "application/x-www-form-urlencoded"
META_BODY = (FIXTURES / "meta" / "status_sent.json").read_bytes()
TWILIO_BODY = (FIXTURES / "twilio" / "status_delivered.form").read_bytes()
GENERIC_BODY = b'{"id":"m-1","status":"delivered","to":"+5511999998888"}'


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[tuple[TestClient[Any, Any], RecordingPublisher]]:
    publisher = RecordingPublisher()
    settings = ReceiverSettings(spool_dir=tmp_path / "spool")
    test_client: TestClient[Any, Any] = TestClient(TestServer(create_app(settings, publisher, channels=CHANNELS)))
    await test_client.start_server()
    yield test_client, publisher
    await test_client.close()


def twilio_headers(url: str, token: str = TWILIO_TOKEN) -> dict[str, str]:
    params = parse_qsl(TWILIO_BODY.decode(), keep_blank_values=True)
    return {"Content-Type": FORM, "X-Twilio-Signature": twilio_signature(token, url, params)}


def vonage_headers(body: bytes, secret: str = VONAGE_SECRET) -> dict[str, str]:
    claims = {"iat": int(time.time()), "payload_hash": hashlib.sha256(body).hexdigest(), "api_key": "k"}
    return {"Content-Type": JSON, "Authorization": "Bearer " + jwt.encode(claims, secret, algorithm="HS256")}


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def meta_signature(body: bytes, secret: str = META_SECRET) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


async def test_every_kind_accepts_good_and_refuses_wrong_or_missing_credentials(
    client: tuple[TestClient[Any, Any], RecordingPublisher], caplog: pytest.LogCaptureFixture
) -> None:
    http, publisher = client
    caplog.set_level(logging.DEBUG)
    base = str(http.make_url("")).rstrip("/")
    cases: list[tuple[str, bytes, dict[str, str], dict[str, str], dict[str, str]]] = [
        (
            "/webhooks/meta/wa",
            META_BODY,
            {"Content-Type": JSON, "X-Hub-Signature-256": meta_signature(META_BODY)},
            {"Content-Type": JSON, "X-Hub-Signature-256": meta_signature(META_BODY, "wrong")},
            {"Content-Type": JSON},
        ),
        (
            "/webhooks/twilio/sms",
            TWILIO_BODY,
            twilio_headers(f"{base}/webhooks/twilio/sms"),
            twilio_headers(f"{base}/webhooks/twilio/sms", "wrong-token"),
            {"Content-Type": FORM},
        ),
        (
            "/webhooks/vonage/vg",
            GENERIC_BODY,
            vonage_headers(GENERIC_BODY),
            vonage_headers(GENERIC_BODY, "wrong-secret-wrong-secret-wrong-secret"),
            {"Content-Type": JSON},
        ),
        (
            "/webhooks/aivo/av",
            GENERIC_BODY,
            {"Content-Type": JSON, "x-auth-token": TOKEN},
            {"Content-Type": JSON, "x-auth-token": TOKEN + "x"},
            {"Content-Type": JSON},
        ),
        (
            "/webhooks/weni/wn",
            GENERIC_BODY,
            {"Content-Type": JSON, "X-Weni-Key": TOKEN},
            {"Content-Type": JSON, "x-auth-token": TOKEN},  # the right token in the wrong header
            {"Content-Type": JSON},
        ),
        (
            "/webhooks/wpp/wp",
            GENERIC_BODY,
            {"Content-Type": JSON, "Authorization": basic("wpp", PASSWORD)},
            {"Content-Type": JSON, "Authorization": basic("wpp", PASSWORD + "x")},
            {"Content-Type": JSON},
        ),
    ]
    for path, body, good, wrong, missing in cases:
        statuses = []
        for headers in (good, wrong, missing):
            response = await http.post(path, data=body, headers=headers)
            statuses.append(response.status)
        assert statuses == [200, 401, 401], path
    raws = [RawWebhook.from_avro(v) for _, v in publisher.on("wa.webhooks.raw")]
    assert [r.channel for r in raws] == ["wa", "sms", "vg", "av", "wn", "wp"]
    audits = [codec("audit_record").decode(v) for _, v in publisher.on("wa.audit")]
    assert [a["http_status"] for a in audits] == [401] * 12
    for raw in raws:
        assert not {"authorization", "x-auth-token", "x-weni-key", "x-hub-signature-256", "x-twilio-signature"} & set(
            raw.headers
        )
    stored = repr(publisher.records) + caplog.text
    for secret in SECRETS:
        assert secret not in stored
        assert base64.b64encode(secret.encode()).decode() not in stored


async def test_twilio_url_as_seen_behind_a_proxy(client: tuple[TestClient[Any, Any], RecordingPublisher]) -> None:
    http, publisher = client
    proxied = {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "public.example.org"}
    ok = await http.post(
        "/webhooks/twilio/sms?x=1",
        data=TWILIO_BODY,
        headers={**twilio_headers("https://public.example.org/webhooks/twilio/sms?x=1"), **proxied},
    )
    unproxied = await http.post(
        "/webhooks/twilio/sms?x=1",
        data=TWILIO_BODY,
        headers=twilio_headers("https://public.example.org/webhooks/twilio/sms?x=1"),
    )
    assert (ok.status, unproxied.status) == (200, 401)
    (raw,) = [RawWebhook.from_avro(v) for _, v in publisher.on("wa.webhooks.raw")]
    assert raw.url == "https://public.example.org/webhooks/twilio/sms?x=1"


async def test_twilio_url_from_the_channels_public_url(client: tuple[TestClient[Any, Any], RecordingPublisher]) -> None:
    http, _ = client
    # The proxy strips /statusflow; the channel says what Twilio called.
    signed_for = "https://hooks.example.com/statusflow/webhooks/twilio/pub"
    ok = await http.post("/webhooks/twilio/pub", data=TWILIO_BODY, headers=twilio_headers(signed_for))
    assert ok.status == 200
    query = urlencode({"a": "b"})
    ok_query = await http.post(
        f"/webhooks/twilio/pub?{query}", data=TWILIO_BODY, headers=twilio_headers(f"{signed_for}?{query}")
    )
    assert ok_query.status == 200
