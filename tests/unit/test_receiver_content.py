"""Tolerant ingestion at the receiver: sniffed content types, PUT and PATCH, and what stays refused."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import pytest
from aiohttp.test_utils import TestClient, TestServer
from hypothesis import given, settings
from hypothesis import strategies as st

from receiver.app import create_app
from receiver.auth import twilio_signature
from receiver.content import sniff
from receiver.providers import PROVIDERS
from receiver.settings import ReceiverSettings
from schemas.codec import codec
from schemas.envelope import RawWebhook
from tests.factories import FIXTURES
from tests.unit.test_receiver_auth_http import CHANNELS, TOKEN, TWILIO_TOKEN, basic, meta_signature
from tests.unit.test_receiver_http import RecordingPublisher

FORM = "application/x-www-form-urlencoded"
JSON = "application/json"
WENI_CLOUD = (FIXTURES / "weni" / "cloud_read.json").read_bytes()
WENI_FORM = (FIXTURES / "weni" / "form_onpremise_bracketed.form").read_bytes()
AIVO = (FIXTURES / "aivo" / "status_sent.json").read_bytes()
META = (FIXTURES / "meta" / "status_sent.json").read_bytes()
TWILIO = (FIXTURES / "twilio" / "status_delivered.form").read_bytes()
NO_TYPE = object()  # send the body without any Content-Type header

Client = tuple[TestClient[Any, Any], RecordingPublisher]


async def _client(tmp_path: Path, **kwargs: Any) -> AsyncIterator[Client]:
    publisher = RecordingPublisher()
    app = create_app(ReceiverSettings(spool_dir=tmp_path / "spool"), publisher, **kwargs)
    test_client: TestClient[Any, Any] = TestClient(TestServer(app))
    await test_client.start_server()
    yield test_client, publisher
    await test_client.close()


@pytest.fixture
async def dev(tmp_path: Path) -> AsyncIterator[Client]:
    """Development mode: loopback webhooks accepted unsigned."""
    async for pair in _client(tmp_path):
        yield pair


@pytest.fixture
async def signed(tmp_path: Path) -> AsyncIterator[Client]:
    """Channels with credentials (tests/unit/test_receiver_auth_http.py)."""
    async for pair in _client(tmp_path, channels=CHANNELS):
        yield pair


async def send(
    http: TestClient[Any, Any], path: str, body: bytes, content_type: object, method: str = "POST", **headers: str
) -> Any:
    if content_type is NO_TYPE:
        return await http.request(method, path, data=body, headers=headers, skip_auto_headers=["Content-Type"])
    return await http.request(method, path, data=body, headers={"Content-Type": str(content_type), **headers})


def envelope(publisher: RecordingPublisher) -> RawWebhook:
    ((_, value),) = publisher.on("wa.webhooks.raw")
    return RawWebhook.from_avro(value)


def rejection(publisher: RecordingPublisher) -> dict[str, Any]:
    ((_, value),) = publisher.on("wa.audit")
    return codec("audit_record").decode(value)


@pytest.mark.parametrize(
    ("provider", "body", "sent", "read_as"),
    [
        ("weni", WENI_CLOUD, NO_TYPE, JSON),
        ("weni", WENI_CLOUD, "text/plain", JSON),
        ("weni", WENI_FORM, NO_TYPE, FORM),
        ("weni", WENI_FORM, "application/octet-stream", FORM),
        ("aivo", AIVO, NO_TYPE, JSON),
        ("aivo", AIVO, "text/plain; charset=utf-8", JSON),
        ("wpp", b'{"id":"m1","status":"Entregue"}', "application/octet-stream", JSON),
        ("generic", b'[{"id":"m1","status":"read"}]', "text/plain", JSON),
        ("meta", META, "text/plain", JSON),
        ("twilio", TWILIO, NO_TYPE, FORM),
    ],
)
async def test_a_body_without_a_usable_content_type_is_sniffed_and_kept_as_it_came(
    dev: Client, provider: str, body: bytes, sent: object, read_as: str
) -> None:
    http, publisher = dev
    response = await send(http, f"/webhooks/{provider}", body, sent)
    assert response.status == 200, await response.text()
    raw = envelope(publisher)
    assert (raw.content_type, raw.body) == (read_as, body)
    assert raw.sniffed_from == ("" if sent is NO_TYPE else sent)
    metrics = await (await http.get("/metrics")).text()
    assert f'statusflow_receiver_sniffed_total{{content_type="{read_as}",provider="{provider}"}} 1.0' in metrics


async def test_a_declared_content_type_is_not_sniffed(dev: Client) -> None:
    http, publisher = dev
    assert (await send(http, "/webhooks/weni", WENI_FORM, FORM)).status == 200
    assert (await send(http, "/webhooks/weni", WENI_CLOUD, JSON)).status == 200
    assert [RawWebhook.from_avro(v).sniffed_from for _, v in publisher.on("wa.webhooks.raw")] == [None, None]


@pytest.mark.parametrize(
    ("provider", "body", "sent", "says"),
    [
        ("aivo", b"message_id=x&message_status=sent", NO_TYPE, "this body (sent without a Content-Type) is neither"),
        ("meta", b"x=1", "text/plain", "this body (sent as text/plain) is neither"),
        ("weni", b"<status>read</status>", "application/octet-stream", "is neither"),
        ("weni", b"", NO_TYPE, "is neither"),
        ("weni", b'"just a string"', "text/plain", "is neither"),
        ("aivo", AIVO, "application/xml", "aivo webhooks must be JSON (application/json), not application/xml"),
    ],
)
async def test_a_body_that_is_neither_json_nor_a_form_is_still_415_and_says_why(
    dev: Client, provider: str, body: bytes, sent: object, says: str
) -> None:
    http, publisher = dev
    response = await send(http, f"/webhooks/{provider}", body, sent)
    assert response.status == 415
    assert says in (await response.json())["error"]
    assert publisher.on("wa.webhooks.raw") == []
    assert rejection(publisher)["http_status"] == 415


async def test_a_declared_but_malformed_body_is_still_400(dev: Client) -> None:
    http, _ = dev
    assert (await send(http, "/webhooks/aivo", b"{not json", JSON)).status == 400


@pytest.mark.parametrize("provider", sorted(p for p, spec in PROVIDERS.items() if "PUT" in spec.methods))
@pytest.mark.parametrize("method", ["PUT", "PATCH"])
async def test_put_and_patch_are_taken_like_post_where_senders_can_be_set_to_them(
    dev: Client, provider: str, method: str
) -> None:
    http, publisher = dev
    response = await send(http, f"/webhooks/{provider}/some-channel", b'{"id":"m1","status":"read"}', NO_TYPE, method)
    assert response.status == 200, await response.text()
    raw = envelope(publisher)
    assert (raw.method, raw.channel, raw.content_type) == (method, "some-channel", JSON)


def test_put_and_patch_are_for_the_configurable_senders() -> None:
    assert sorted(p for p, spec in PROVIDERS.items() if spec.methods >= {"PUT", "PATCH"}) == [
        "aivo",
        "generic",
        "weni",
        "wpp",
    ]


@pytest.mark.parametrize(("provider", "allow"), [("meta", "GET, POST"), ("twilio", "POST"), ("vonage", "POST")])
@pytest.mark.parametrize("method", ["PUT", "PATCH"])
async def test_put_and_patch_elsewhere_are_405_with_allow(dev: Client, provider: str, allow: str, method: str) -> None:
    http, publisher = dev
    response = await http.request(method, f"/webhooks/{provider}", data=b"{}", headers={"Content-Type": JSON})
    assert response.status == 405
    assert response.headers["Allow"] == allow
    assert (await response.json())["error"] == f"{provider} webhooks are sent with POST, not {method}"
    assert publisher.on("wa.webhooks.raw") == []
    assert rejection(publisher)["http_status"] == 405


async def test_a_method_no_webhook_uses_is_405(dev: Client) -> None:
    http, _ = dev
    assert (await http.delete("/webhooks/weni")).status == 405


async def test_get_on_a_provider_other_than_meta_is_405_with_its_methods(dev: Client) -> None:
    http, _ = dev
    response = await http.get("/webhooks/weni")
    assert (response.status, response.headers["Allow"]) == (405, "PATCH, POST, PUT")


async def test_credentials_are_checked_on_the_body_as_it_came_whatever_its_method_or_sniffed_type(
    signed: Client,
) -> None:
    http, publisher = signed
    base = str(http.make_url("")).rstrip("/")
    ok = [
        await send(http, "/webhooks/weni/wn", WENI_FORM, NO_TYPE, "PUT", **{"X-Weni-Key": TOKEN}),
        await send(http, "/webhooks/aivo/av", AIVO, "text/plain", "PATCH", **{"x-auth-token": TOKEN}),
        await send(
            http,
            "/webhooks/wpp/wp",
            b'{"id":"m","status":"read"}',
            NO_TYPE,
            "PUT",
            Authorization=basic("wpp", "basic-password-0123"),
        ),
        await send(http, "/webhooks/meta/wa", META, "text/plain", **{"X-Hub-Signature-256": meta_signature(META)}),
        # Twilio signs the form's parameters: the sniffed form is what the signature is checked over.
        await send(
            http,
            "/webhooks/twilio/sms",
            TWILIO,
            NO_TYPE,
            **{
                "X-Twilio-Signature": twilio_signature(
                    TWILIO_TOKEN, f"{base}/webhooks/twilio/sms", parse_qsl(TWILIO.decode(), keep_blank_values=True)
                )
            },
        ),
    ]
    assert [r.status for r in ok] == [200] * 5, [await r.text() for r in ok]
    refused = [
        await send(http, "/webhooks/weni/wn", WENI_FORM, NO_TYPE, "PUT", **{"X-Weni-Key": "wrong"}),
        await send(http, "/webhooks/meta/wa", META, "text/plain", **{"X-Hub-Signature-256": meta_signature(b"other")}),
    ]
    assert [r.status for r in refused] == [401, 401]
    assert len(publisher.on("wa.webhooks.raw")) == 5


_WENI = PROVIDERS["weni"]
_AIVO = PROVIDERS["aivo"]


@settings(max_examples=300)
@given(body=st.binary(max_size=64) | st.text(max_size=40).map(str.encode))
def test_sniffing_any_bytes_finds_json_a_form_or_nothing(body: bytes) -> None:
    for spec in (_WENI, _AIVO):
        found = sniff(spec, body)
        assert found is None or found.content_type in spec.content_types
        if found is not None and found.content_type == FORM:
            assert found.form and all(name for name, _ in found.form)


def test_check_config_says_which_methods_each_channel_takes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from statusflow_cli.main import main

    config = tmp_path / "channels.toml"
    config.write_text(
        '[[channels]]\nname = "wn"\nprovider = "weni"\n[channels.auth]\nkind = "header_token"\nsecret = "s"\n'
        '[[channels]]\nname = "wa"\nprovider = "meta"\n[channels.auth]\nkind = "meta_hmac"\nsecret = "s"\n',
        encoding="utf-8",
    )
    assert main(["check-config", str(config)]) == 0
    out = capsys.readouterr().out
    assert "- wn: POST/PUT/PATCH /webhooks/weni/wn (all statuses)" in out
    assert "- wa: POST /webhooks/meta/wa (all statuses)" in out
