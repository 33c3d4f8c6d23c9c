"""Webhook handlers: route, check, authenticate, wrap in the raw envelope, make durable, acknowledge."""

from __future__ import annotations

import asyncio
import hmac
import logging
import time

from aiohttp import web

from receiver import content
from receiver.auth import Presented, is_loopback, meta_signature_valid, secret_headers, verify
from receiver.context import BODY, CHANNELS, DURABLE, METRICS, REQUEST_ID, SETTINGS
from receiver.errors import Rejected
from receiver.routing import Route, resolve
from schemas.channels import AuthConfig
from schemas.envelope import RawWebhook

log = logging.getLogger(__name__)

# Headers worth keeping in the raw log; credentials are never among them (see _kept_headers).
KEPT_HEADERS = frozenset(
    {
        "user-agent",
        "x-request-id",
        "x-forwarded-for",
        "x-forwarded-proto",
        "x-forwarded-host",
        "x-twilio-idempotency-token",
    }
)


def _route(request: web.Request) -> Route:
    # The configuration in force is read once, here: the route carries the channel, so a request
    # finishes with the configuration it started with, whatever a reload swaps in meanwhile.
    live = request.app.get(CHANNELS)
    channels = live.current if live is not None else None
    return resolve(request.match_info["provider"], request.match_info.get("channel"), channels)


def public_url(request: web.Request, route: Route) -> str:
    """The URL as the provider called it: the channel's public_url, else proxy headers, else the socket's."""
    if route.channel is not None and route.channel.public_url:
        return route.channel.public_url + request.raw_path
    if request.app[SETTINGS].trust_forwarded_headers:
        proto = request.headers.get("X-Forwarded-Proto", "").split(",")[0].strip()
        host = request.headers.get("X-Forwarded-Host", "").split(",")[0].strip()
        if proto or host:
            return f"{proto or request.scheme}://{host or request.host}{request.raw_path}"
    return f"{request.scheme}://{request.host}{request.raw_path}"


def _allow(route: Route) -> str:
    """The Allow header of a 405 on a webhook path: its webhook methods, and GET on Meta's."""
    return ", ".join(sorted(route.spec.methods | ({"GET"} if route.spec.name == "meta" else set())))


def _check_method(route: Route, method: str) -> None:
    if method not in route.spec.methods:
        sent = " or ".join(sorted(route.spec.methods))
        raise Rejected(405, f"{route.spec.name} webhooks are sent with {sent}, not {method}", allow=_allow(route))


def _authenticate(request: web.Request, route: Route, url: str, body: bytes, form: list[tuple[str, str]]) -> None:
    if route.channel is not None:
        presented = Presented(
            url=url,
            headers={k.lower(): v for k, v in request.headers.items()},
            body=body,
            form=form,
            now=time.time(),
        )
        if not verify(route.channel.auth, presented):
            raise Rejected(401, f"missing or wrong credentials for channel {route.channel_name!r}")
        return
    settings = request.app[SETTINGS]
    if route.spec.name == "meta" and settings.meta_app_secret is not None:
        secret = settings.meta_app_secret.get_secret_value()
        if not meta_signature_valid(secret, body, request.headers.get("X-Hub-Signature-256")):
            raise Rejected(401, "missing or wrong X-Hub-Signature-256")
        return
    if settings.allow_unauthenticated_loopback and is_loopback(request.remote):
        return
    raise Rejected(401, f"no credentials configured for {route.spec.name}; unauthenticated access is loopback-only")


def _kept_headers(request: web.Request, route: Route) -> dict[str, str]:
    secret = secret_headers(route.channel.auth if route.channel is not None else AuthConfig())
    return {k.lower(): v for k, v in request.headers.items() if k.lower() in KEPT_HEADERS - secret}


async def _read_body(request: web.Request) -> bytes:
    """The whole body within the size limit and the read deadline; 413 or 408 otherwise.

    A declared length over the limit is refused before any byte is read; a chunked body is cut
    off as soon as it passes the limit (aiohttp's client_max_size counts while streaming); a
    client that stalls mid-body is dropped at the deadline instead of holding a task forever.
    """
    settings = request.app[SETTINGS]
    limit = settings.max_body_bytes
    if request.content_length is not None and request.content_length > limit:
        raise Rejected(413, f"body of {request.content_length} bytes is over the {limit} byte limit")
    try:
        async with asyncio.timeout(settings.body_read_timeout_s):
            body = await request.read()
    except TimeoutError as exc:
        raise Rejected(408, f"body not received within {settings.body_read_timeout_s:g} s") from exc
    except web.HTTPRequestEntityTooLarge as exc:
        raise Rejected(413, f"body is over the {limit} byte limit") from exc
    request[BODY] = body
    return body


async def receive_webhook(request: web.Request) -> web.Response:
    """POST (PUT, PATCH) /webhooks/{provider}[/{channel}]: 200 only once the envelope is durable."""
    route = _route(request)
    _check_method(route, request.method)
    declared = request.content_type
    content.check_declared(route.spec, declared)
    body = await _read_body(request)
    read = content.read(route.spec, declared, request.headers.get("Content-Type", ""), body)
    url = public_url(request, route)
    # Credentials are checked over the body as it came, whatever its type was found to be.
    _authenticate(request, route, url, body, read.form)
    settings = request.app[SETTINGS]
    request_id = request[REQUEST_ID]
    envelope = RawWebhook(
        request_id=request_id,
        provider=route.spec.name,
        channel=route.channel_name,
        received_at=int(time.time() * 1000),
        content_type=read.content_type,
        url=url,
        body=body,
        headers=_kept_headers(request, route),
        method=request.method,
        remote_addr=request.remote,
        sniffed_from=read.sniffed_from,
    )
    if read.sniffed_from is not None:
        request.app[METRICS].sniffed.labels(route.spec.name, read.content_type).inc()
    durable = await request.app[DURABLE].put(settings.topics.raw, request_id.encode(), envelope.to_avro())
    # The access log line and the audit record say the same: at debug only, not twice per request.
    log.debug("webhook %s accepted for %s/%s, durable in %s", request_id, route.spec.name, route.channel_name, durable)
    return web.json_response({"status": "accepted", "request_id": request_id, "durable": durable})


async def meta_handshake(request: web.Request) -> web.Response:
    """GET /webhooks/meta[/{channel}]: answer hub.challenge when hub.verify_token matches."""
    route = _route(request)
    if route.spec.name != "meta":
        raise Rejected(405, "GET is only the Meta verification handshake", allow=_allow(route))
    token = route.channel.auth.verify_token if route.channel is not None else request.app[SETTINGS].meta_verify_token
    query = request.query
    if query.get("hub.mode") != "subscribe" or "hub.challenge" not in query:
        raise Rejected(400, "expected hub.mode=subscribe with hub.challenge")
    if token is None:
        raise Rejected(403, "no verify token configured for this channel")
    if not hmac.compare_digest(query.get("hub.verify_token", "").encode(), token.get_secret_value().encode()):
        raise Rejected(403, "hub.verify_token does not match")
    return web.Response(text=query["hub.challenge"])
