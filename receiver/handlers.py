"""Webhook handlers: check, wrap in the raw envelope, publish, then acknowledge."""

from __future__ import annotations

import hmac
import logging
import time
from urllib.parse import parse_qs

import orjson
from aiohttp import web

from receiver.auth import is_loopback, meta_signature_valid
from receiver.context import PUBLISHER, REQUEST_ID, SETTINGS
from receiver.errors import Rejected
from receiver.providers import PROVIDERS, ProviderSpec
from schemas.envelope import RawWebhook

log = logging.getLogger(__name__)

# Headers worth keeping in the raw log; never authorization or signature secrets' inputs.
KEPT_HEADERS = ("user-agent", "x-request-id", "x-forwarded-for", "x-forwarded-proto", "x-forwarded-host")


def _provider(request: web.Request) -> ProviderSpec:
    name = request.match_info["provider"]
    spec = PROVIDERS.get(name)
    if spec is None:
        raise Rejected(404, f"unknown provider {name!r}", provider=name)
    return spec


def _check_body(spec: ProviderSpec, content_type: str, body: bytes) -> None:
    if content_type not in spec.content_types:
        raise Rejected(415, f"{spec.name} webhooks must be {' or '.join(sorted(spec.content_types))}")
    if content_type == "application/json":
        try:
            orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            raise Rejected(400, f"malformed JSON: {exc}") from exc
    else:
        try:
            parse_qs(body.decode("utf-8"), strict_parsing=bool(body), keep_blank_values=True)
        except (UnicodeDecodeError, ValueError) as exc:
            raise Rejected(400, f"malformed form body: {exc}") from exc


def _authenticate(request: web.Request, spec: ProviderSpec, body: bytes) -> None:
    settings = request.app[SETTINGS]
    if spec.name == "meta" and settings.meta_app_secret is not None:
        secret = settings.meta_app_secret.get_secret_value()
        if not meta_signature_valid(secret, body, request.headers.get("X-Hub-Signature-256")):
            raise Rejected(401, "missing or wrong X-Hub-Signature-256")
        return
    if settings.allow_unauthenticated_loopback and is_loopback(request.remote):
        return
    raise Rejected(401, f"no credentials configured for {spec.name}; unauthenticated access is loopback-only")


async def receive_webhook(request: web.Request) -> web.Response:
    """POST /webhooks/{provider}[/{channel}]: 200 only once the broker holds the envelope."""
    spec = _provider(request)
    body = await request.read()
    content_type = request.content_type
    _check_body(spec, content_type, body)
    _authenticate(request, spec, body)
    settings = request.app[SETTINGS]
    request_id = request[REQUEST_ID]
    envelope = RawWebhook(
        request_id=request_id,
        provider=spec.name,
        channel=request.match_info.get("channel", "default"),
        received_at=int(time.time() * 1000),
        content_type=content_type,
        url=str(request.url),
        body=body,
        headers={k.lower(): v for k, v in request.headers.items() if k.lower() in KEPT_HEADERS},
        method=request.method,
        remote_addr=request.remote,
    )
    await request.app[PUBLISHER].publish(settings.topics.raw, request_id.encode(), envelope.to_avro())
    return web.json_response({"status": "accepted", "request_id": request_id})


async def meta_handshake(request: web.Request) -> web.Response:
    """GET /webhooks/meta: answer hub.challenge when hub.verify_token matches."""
    if request.match_info["provider"] != "meta":
        raise Rejected(405, "GET is only the Meta verification handshake")
    token = request.app[SETTINGS].meta_verify_token
    query = request.query
    if query.get("hub.mode") != "subscribe" or "hub.challenge" not in query:
        raise Rejected(400, "expected hub.mode=subscribe with hub.challenge")
    if token is None:
        raise Rejected(403, "no verify token configured (STATUSFLOW_META_VERIFY_TOKEN)")
    if not hmac.compare_digest(query.get("hub.verify_token", ""), token.get_secret_value()):
        raise Rejected(403, "hub.verify_token does not match")
    return web.Response(text=query["hub.challenge"])


async def healthz(request: web.Request) -> web.Response:
    """Alive."""
    return web.json_response({"status": "ok"})
