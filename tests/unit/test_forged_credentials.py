"""Forged and replayed credentials of every auth scheme: 401, an audit record, no secret anywhere.

test_receiver_auth_http.py checks good, wrong and missing credentials per kind; this adds what
an attacker would try (a genuine signature replayed onto another body, URL or channel, expired
or re-used Vonage tokens, `alg: none`, prefixes of a token) and that every comparison with a
secret goes through hmac.compare_digest.
"""

from __future__ import annotations

import ast
import base64
import hashlib
import hmac
import inspect
import json
import logging
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import jwt
import pytest
from aiohttp.test_utils import TestClient, TestServer
from pydantic import SecretStr

import receiver.auth
import receiver.handlers
from receiver.app import create_app
from receiver.auth import Presented, verify
from receiver.logs import AccessLogger
from receiver.settings import ReceiverSettings
from schemas.channels import AuthConfig, parse_channels
from schemas.codec import codec
from tests.unit.test_receiver_auth_http import (
    FORM,
    GENERIC_BODY,
    JSON,
    META_BODY,
    META_SECRET,
    PASSWORD,
    TOKEN,
    TWILIO_BODY,
    TWILIO_TOKEN,
    VONAGE_SECRET,
    basic,
    meta_signature,
    twilio_headers,
)
from tests.unit.test_receiver_http import RecordingPublisher

VERIFY_TOKEN = "meta-verify-token-0123456789"
OTHER_BODY = GENERIC_BODY.replace(b"delivered", b"read")
SECRETS = (META_SECRET, TWILIO_TOKEN, VONAGE_SECRET, TOKEN, PASSWORD, VERIFY_TOKEN)

CHANNELS = parse_channels(
    {
        "channels": [
            {
                "name": "wa",
                "provider": "meta",
                "auth": {"kind": "meta_hmac", "secret": META_SECRET, "verify_token": VERIFY_TOKEN},
            },
            {"name": "sms", "provider": "twilio", "auth": {"kind": "twilio_signature", "secret": TWILIO_TOKEN}},
            {"name": "sms2", "provider": "twilio", "auth": {"kind": "twilio_signature", "secret": TWILIO_TOKEN}},
            {
                "name": "vg",
                "provider": "vonage",
                "auth": {"kind": "vonage_jwt", "secret": VONAGE_SECRET, "max_age_s": 300},
            },
            {"name": "av", "provider": "aivo", "auth": {"kind": "header_token", "secret": TOKEN}},
            {"name": "wp", "provider": "wpp", "auth": {"kind": "basic", "username": "wpp", "secret": PASSWORD}},
        ]
    },
    {},
)

Client = tuple[TestClient[Any, Any], RecordingPublisher]


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[Client]:
    publisher = RecordingPublisher()
    settings = ReceiverSettings(spool_dir=tmp_path / "spool")
    server = TestServer(create_app(settings, publisher, channels=CHANNELS))
    await server.start_server(access_log_class=AccessLogger)  # as receiver/__main__.py runs it
    test_client: TestClient[Any, Any] = TestClient(server)
    await test_client.start_server()
    yield test_client, publisher
    await test_client.close()


def vonage_token(claims: dict[str, Any], secret: str = VONAGE_SECRET) -> dict[str, str]:
    return {"Content-Type": JSON, "Authorization": "Bearer " + jwt.encode(claims, secret, algorithm="HS256")}


def unsigned_token(claims: dict[str, Any]) -> str:
    def part(value: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()

    return f"{part({'alg': 'none', 'typ': 'JWT'})}.{part(claims)}."


def forgeries(base: str) -> list[tuple[str, str, bytes, dict[str, str]]]:
    """(what, path, body, headers): each one an attack that must get 401."""
    now = int(time.time())
    good_hash = hashlib.sha256(GENERIC_BODY).hexdigest()
    sms_url = f"{base}/webhooks/twilio/sms"
    return [
        # Meta X-Hub-Signature-256
        ("meta: genuine signature replayed on another body", "/webhooks/meta/wa", OTHER_BODY, {
            "Content-Type": JSON, "X-Hub-Signature-256": meta_signature(GENERIC_BODY)}),
        ("meta: signature truncated", "/webhooks/meta/wa", META_BODY, {
            "Content-Type": JSON, "X-Hub-Signature-256": meta_signature(META_BODY)[:-2]}),
        ("meta: sha1 scheme", "/webhooks/meta/wa", META_BODY, {
            "Content-Type": JSON,
            "X-Hub-Signature-256": "sha1=" + hmac.new(META_SECRET.encode(), META_BODY, hashlib.sha1).hexdigest()}),
        ("meta: bare hex without sha256=", "/webhooks/meta/wa", META_BODY, {
            "Content-Type": JSON, "X-Hub-Signature-256": meta_signature(META_BODY).removeprefix("sha256=")}),
        ("meta: the secret itself as the signature", "/webhooks/meta/wa", META_BODY, {
            "Content-Type": JSON, "X-Hub-Signature-256": "sha256=" + META_SECRET}),
        # Twilio X-Twilio-Signature
        ("twilio: signature of another channel's URL", "/webhooks/twilio/sms2", TWILIO_BODY,
         twilio_headers(sms_url)),
        ("twilio: parameters changed after signing", "/webhooks/twilio/sms",
         TWILIO_BODY.replace(b"delivered", b"read"), twilio_headers(sms_url)),
        ("twilio: JSON body not matching bodySHA256", "/webhooks/twilio/sms?bodySHA256=" + good_hash, TWILIO_BODY,
         twilio_headers(f"{sms_url}?bodySHA256={good_hash}")),
        ("twilio: empty signature", "/webhooks/twilio/sms", TWILIO_BODY, {
            "Content-Type": FORM, "X-Twilio-Signature": ""}),
        # Vonage JWT
        ("vonage: payload_hash of another body", "/webhooks/vonage/vg", OTHER_BODY,
         vonage_token({"iat": now, "payload_hash": good_hash})),
        ("vonage: expired exp", "/webhooks/vonage/vg", GENERIC_BODY,
         vonage_token({"iat": now - 7200, "exp": now - 3600, "payload_hash": good_hash})),
        ("vonage: replayed token older than max_age_s", "/webhooks/vonage/vg", GENERIC_BODY,
         vonage_token({"iat": now - 3600, "payload_hash": good_hash})),
        ("vonage: no iat while max_age_s is set", "/webhooks/vonage/vg", GENERIC_BODY,
         vonage_token({"payload_hash": good_hash})),
        ("vonage: alg none", "/webhooks/vonage/vg", GENERIC_BODY, {
            "Content-Type": JSON,
            "Authorization": "Bearer " + unsigned_token({"iat": now, "payload_hash": good_hash})}),
        ("vonage: signed with another secret", "/webhooks/vonage/vg", GENERIC_BODY,
         vonage_token({"iat": now, "payload_hash": good_hash}, "another-secret-another-secret-00")),
        ("vonage: payload_hash not a string", "/webhooks/vonage/vg", GENERIC_BODY,
         vonage_token({"iat": now, "payload_hash": 12345})),
        ("vonage: garbage bearer", "/webhooks/vonage/vg", GENERIC_BODY, {
            "Content-Type": JSON, "Authorization": "Bearer a.b.c"}),
        # Static header token
        ("header token: a prefix of the token", "/webhooks/aivo/av", GENERIC_BODY, {
            "Content-Type": JSON, "x-auth-token": TOKEN[:-1]}),
        ("header token: upper-cased", "/webhooks/aivo/av", GENERIC_BODY, {
            "Content-Type": JSON, "x-auth-token": TOKEN.upper()}),
        ("header token: sent as a bearer", "/webhooks/aivo/av", GENERIC_BODY, {
            "Content-Type": JSON, "Authorization": f"Bearer {TOKEN}"}),
        # Basic
        ("basic: right password, wrong user", "/webhooks/wpp/wp", GENERIC_BODY, {
            "Content-Type": JSON, "Authorization": basic("admin", PASSWORD)}),
        ("basic: no colon", "/webhooks/wpp/wp", GENERIC_BODY, {
            "Content-Type": JSON, "Authorization": "Basic " + base64.b64encode(b"wpp" + PASSWORD.encode()).decode()}),
        ("basic: not base64", "/webhooks/wpp/wp", GENERIC_BODY, {
            "Content-Type": JSON, "Authorization": "Basic %%%not-base64"}),
        ("basic: invalid UTF-8", "/webhooks/wpp/wp", GENERIC_BODY, {
            "Content-Type": JSON, "Authorization": "Basic " + base64.b64encode(b"wpp:\xff\xfe").decode()}),
    ]  # fmt: skip


async def test_every_forgery_is_401_with_an_audit_and_no_secret_anywhere(
    client: Client, caplog: pytest.LogCaptureFixture
) -> None:
    http, publisher = client
    caplog.set_level(logging.DEBUG)
    base = str(http.make_url("")).rstrip("/")
    cases = forgeries(base)
    answers = []
    for what, path, body, headers in cases:
        response = await http.post(path, data=body, headers=headers)
        text = await response.text()
        assert response.status == 401, what
        assert "missing or wrong credentials" in text, what
        answers.append(text)
    assert publisher.on("wa.webhooks.raw") == []  # nothing forged reached the event log
    audits = [codec("audit_record").decode(v) for _, v in publisher.on("wa.audit")]
    assert [(a["http_status"], a["outcome"]) for a in audits] == [(401, "rejected")] * len(cases)
    everything = "\n".join(answers) + repr(publisher.records) + caplog.text
    for secret in SECRETS:
        assert secret not in everything
        assert base64.b64encode(secret.encode()).decode() not in everything


async def test_genuine_credentials_still_pass_so_the_forgeries_fail_for_the_right_reason(client: Client) -> None:
    http, _ = client
    base = str(http.make_url("")).rstrip("/")
    good_hash = hashlib.sha256(GENERIC_BODY).hexdigest()
    genuine = [
        (
            "/webhooks/meta/wa",
            GENERIC_BODY,
            {"Content-Type": JSON, "X-Hub-Signature-256": meta_signature(GENERIC_BODY)},
        ),
        ("/webhooks/twilio/sms", TWILIO_BODY, twilio_headers(f"{base}/webhooks/twilio/sms")),
        ("/webhooks/vonage/vg", GENERIC_BODY, vonage_token({"iat": int(time.time()), "payload_hash": good_hash})),
        ("/webhooks/aivo/av", GENERIC_BODY, {"Content-Type": JSON, "x-auth-token": TOKEN}),
        ("/webhooks/wpp/wp", GENERIC_BODY, {"Content-Type": JSON, "Authorization": basic("wpp", PASSWORD)}),
    ]
    for path, body, headers in genuine:
        assert (await http.post(path, data=body, headers=headers)).status == 200, path


async def test_handshake_with_a_wrong_token_is_403_and_the_token_is_never_logged(
    client: Client, caplog: pytest.LogCaptureFixture
) -> None:
    http, _ = client
    caplog.set_level(logging.DEBUG)
    query = {"hub.mode": "subscribe", "hub.challenge": "42"}
    wrong = await http.get("/webhooks/meta/wa", params={**query, "hub.verify_token": VERIFY_TOKEN[:-1]})
    right = await http.get("/webhooks/meta/wa", params={**query, "hub.verify_token": VERIFY_TOKEN})
    assert (wrong.status, right.status, await right.text()) == (403, 200, "42")
    access = [r.getMessage() for r in caplog.records if r.name == "aiohttp.access"]
    assert any("/webhooks/meta/wa" in line for line in access)  # the access log is on, without the query
    assert VERIFY_TOKEN not in caplog.text
    assert VERIFY_TOKEN[:-1] not in caplog.text


async def test_development_mode_meta_secret_refuses_forgeries(tmp_path: Path) -> None:
    settings = ReceiverSettings(
        spool_dir=tmp_path / "spool",
        meta_app_secret=SecretStr(META_SECRET),
        allow_unauthenticated_loopback=False,
    )
    http: TestClient[Any, Any] = TestClient(TestServer(create_app(settings, RecordingPublisher())))
    await http.start_server()
    try:
        replayed = {"Content-Type": JSON, "X-Hub-Signature-256": meta_signature(GENERIC_BODY)}
        forged = await http.post("/webhooks/meta", data=OTHER_BODY, headers=replayed)
        unsigned = await http.post("/webhooks/twilio", data=TWILIO_BODY, headers={"Content-Type": FORM})
        genuine = await http.post("/webhooks/meta", data=GENERIC_BODY, headers=replayed)
        assert (forged.status, unsigned.status, genuine.status) == (401, 401, 200)
        assert META_SECRET not in await forged.text()
    finally:
        await http.close()


# ------------------------------------------------------------------------------ constant time


def _presented(kind: str) -> tuple[AuthConfig, Presented, str]:
    """A request with a wrong credential for `kind`, and the string the secret side computes."""
    body = GENERIC_BODY
    url = "https://hooks.example.com/webhooks/twilio/sms"
    if kind == "meta_hmac":
        auth = AuthConfig(kind="meta_hmac", secret=SecretStr(META_SECRET))
        expected = hmac.new(META_SECRET.encode(), body, hashlib.sha256).hexdigest()
        return auth, Presented(url, {"x-hub-signature-256": "sha256=" + "0" * 64}, body), expected
    if kind == "twilio_signature":
        auth = AuthConfig(kind="twilio_signature", secret=SecretStr(TWILIO_TOKEN))
        expected = receiver.auth.twilio_signature(TWILIO_TOKEN, url, [])
        return auth, Presented(url, {"x-twilio-signature": "AAAA"}, body), expected
    if kind == "vonage_jwt":
        auth = AuthConfig(kind="vonage_jwt", secret=SecretStr(VONAGE_SECRET))
        token = jwt.encode({"payload_hash": "0" * 64}, VONAGE_SECRET, algorithm="HS256")
        expected = hashlib.sha256(body).hexdigest()
        return auth, Presented(url, {"authorization": f"Bearer {token}"}, body, now=time.time()), expected
    if kind == "header_token":
        auth = AuthConfig(kind="header_token", secret=SecretStr(TOKEN))
        return auth, Presented(url, {"x-auth-token": "nope"}, body), TOKEN
    auth = AuthConfig(kind="basic", username="wpp", secret=SecretStr(PASSWORD))
    return auth, Presented(url, {"authorization": basic("wpp", "nope")}, body), PASSWORD


@pytest.mark.parametrize("kind", ["meta_hmac", "twilio_signature", "vonage_jwt", "header_token", "basic"])
def test_each_scheme_compares_its_secret_side_with_compare_digest(kind: str, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[bytes, bytes]] = []
    real: Callable[[Any, Any], bool] = hmac.compare_digest

    def spy(a: Any, b: Any) -> bool:
        calls.append((a if isinstance(a, bytes) else a.encode(), b if isinstance(b, bytes) else b.encode()))
        return real(a, b)

    monkeypatch.setattr(hmac, "compare_digest", spy)
    auth, presented, expected = _presented(kind)
    assert verify(auth, presented) is False
    assert any(expected.encode() in pair for pair in calls), f"{kind}: {expected!r} never went through compare_digest"


def test_no_credential_is_compared_with_eq_in_the_auth_code() -> None:
    # Every `==`/`!=`/`in` in the auth code and the handshake compares with a literal (a scheme
    # prefix, None): a comparison of two computed strings would be a timing oracle.
    for module in (receiver.auth, receiver.handlers):
        tree = ast.parse(inspect.getsource(module))
        for node in ast.walk(tree):
            if isinstance(node, ast.Compare) and any(isinstance(op, ast.Eq | ast.NotEq) for op in node.ops):
                operands = [node.left, *node.comparators]
                assert any(isinstance(o, ast.Constant) for o in operands), (
                    f"{module.__name__} line {node.lineno}: {ast.unparse(node)}"
                )


def test_the_receiver_process_logs_access_without_query_strings(monkeypatch: pytest.MonkeyPatch) -> None:
    import receiver.__main__ as entry

    seen: dict[str, Any] = {}

    async def no_topics(settings: object) -> list[str]:
        return []

    monkeypatch.setattr(entry, "ensure_topics", no_topics)
    monkeypatch.setattr(entry.web, "run_app", lambda app, **kwargs: seen.update(kwargs))
    monkeypatch.setattr(entry, "configure_logging", lambda level, style, privacy: None)
    monkeypatch.delenv("STATUSFLOW_CHANNELS_FILE", raising=False)
    entry.main()
    assert seen["access_log_class"] is AccessLogger
