"""One middleware maps every refusal to a short JSON error, an audit record and metrics."""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Awaitable, Callable

from aiohttp import web

from receiver.context import BODY, CHANNELS, DURABLE, METRICS, REQUEST_ID, SETTINGS
from receiver.errors import Rejected
from receiver.logs import REQUEST_ID_VAR
from receiver.publisher import PublishError
from schemas.access import TenantLabeller
from schemas.codec import codec

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
EXCERPT_BYTES = 512
_tenant_of = TenantLabeller()


async def _audit_rejection(request: web.Request, status: int, reason: str) -> None:
    """Best effort: a rejection is not durable state, so a broker outage only logs."""
    settings = request.app[SETTINGS]
    request_id: str = request[REQUEST_ID]
    # Only a body the handler already read in full is quoted: reading it here would wait on a
    # slow client with no deadline, or read past the size limit of a 413.
    body = request.get(BODY)
    # The excerpt is the one piece of a payload on a derived topic: numbers in it follow the privacy mode.
    excerpt = settings.privacy().text(body[:EXCERPT_BYTES].decode("utf-8", "replace")) if body else None
    record = codec("audit_record").encode(
        {
            "audit_id": f"{request_id}:receiver:",
            "request_id": request_id,
            "stage": "receiver",
            "provider": request.match_info.get("provider", "unknown"),
            "channel": request.match_info.get("channel", "default"),
            "at": int(time.time() * 1000),
            "http_status": status,
            "outcome": "rejected",
            "detail": reason,
            "events_found": 0,
            "events_ignored": 0,
            "payload_excerpt": excerpt,
        }
    )
    durable = request.app.get(DURABLE)
    if durable is None or not await durable.publish_best_effort(settings.topics.audit, request_id.encode(), record):
        log.warning("audit of rejected request %s not published: broker unavailable", request_id)


@web.middleware
async def errors_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Request id, error mapping, audit of refusals and request metrics."""
    request[REQUEST_ID] = uuid.uuid4().hex
    token = REQUEST_ID_VAR.set(request[REQUEST_ID])
    try:
        return await _handle(request, handler)
    finally:
        REQUEST_ID_VAR.reset(token)


async def _handle(request: web.Request, handler: Handler) -> web.StreamResponse:
    started = time.perf_counter()
    provider = request.match_info.get("provider", "-")
    channel = request.match_info.get("channel", "default")
    headers: dict[str, str] = {}
    try:
        response = await handler(request)
    except Rejected as exc:
        status, reason = exc.status, exc.reason
        if exc.retry_after is not None:
            headers["Retry-After"] = str(exc.retry_after)
        if exc.allow is not None:
            headers["Allow"] = exc.allow
    except PublishError as exc:
        status, reason = 503, "the event log is unavailable; retry later"
        headers["Retry-After"] = str(request.app[SETTINGS].retry_after_s)
        log.warning("request %s not durable: %s", request[REQUEST_ID], exc)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        status, reason = exc.status, exc.reason
        headers.update({k: v for k, v in exc.headers.items() if k == "Allow"})
    else:
        _observe(request, provider, channel, response.status, started)
        return response
    log.info("request %s rejected with %s: %s", request[REQUEST_ID], status, reason)
    if request.path.startswith("/webhooks/"):
        await _audit_rejection(request, status, reason)
    _observe(request, provider, channel, status, started)
    return web.json_response({"error": reason, "request_id": request[REQUEST_ID]}, status=status, headers=headers)


def _observe(request: web.Request, provider: str, channel: str, status: int, started: float) -> None:
    if not request.path.startswith("/webhooks/"):
        return
    if status == 404:
        provider = channel = "-"  # names from unknown paths would make label values unbounded
    metrics = request.app[METRICS]
    metrics.requests.labels(provider, channel, str(status)).inc()
    live = request.app.get(CHANNELS)
    tenant = _tenant_of(live.current if live is not None else None, channel)
    metrics.tenant_requests.labels(tenant, str(status)).inc()
    metrics.latency.labels(provider).observe(time.perf_counter() - started)
