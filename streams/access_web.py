"""The worker's web access control: a thin aiohttp middleware over schemas/access.py.

With tenants (or an operator token) in the channels file, every page but health, readiness and
metrics needs a bearer token. For a channel's pages (`/channels/{provider}/{channel}`,
`/funnel/{provider}/{channel}`) the middleware decides on the channel the route names. A
message (`/messages/...`, with or without a channel in the path) is decided by its handler
(`request_may_see`) on the channel the request names and on the state's own channel, and
refused with the very 404 of an unknown message. Anything else the worker serves (Faust's own
pages) is the operator's.

The dashboard uses the same middleware with its own `scope_of` (dashboard/access_web.py).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Protocol

import orjson
from aiohttp import web
from aiohttp.typedefs import Middleware

from schemas.access import FILTERED, OPEN, OPERATOR_ONLY, Access, Principal, Scope, challenge, channel_scope, may_see
from schemas.channels import ChannelsConfig

log = logging.getLogger(__name__)


class HasHeaders(Protocol):
    """A request of aiohttp or of Faust's views."""

    @property
    def headers(self) -> Mapping[str, str]: ...


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
#: Prometheus scrapes /metrics and orchestrators probe the others: they stay open.
OPEN_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})
#: (access rules, principal) of a request: (None, None) in development mode.
Grant = tuple[Access | None, Principal | None]
_GRANT: web.RequestKey[Grant] = web.RequestKey("statusflow_access")


class CurrentAccess:
    """The access rules of the current channels configuration, rebuilt only when it changes
    (a reload hands over a new ChannelsConfig object)."""

    def __init__(self, current: Callable[[], ChannelsConfig | None]) -> None:
        self._current = current
        self._config: ChannelsConfig | None = None
        self._access: Access | None = None

    def __call__(self) -> Access | None:
        config = self._current()
        if config is not self._config:
            self._config, self._access = config, Access.of(config)
        return self._access


def scope_of(path: str, match_info: dict[str, str]) -> Scope:
    """What a worker request asks for, from its route."""
    if path in OPEN_PATHS:
        return OPEN
    if path.startswith("/messages/"):
        return FILTERED  # the handler decides on the message's channel (see the module's doc)
    provider, channel = match_info.get("provider"), match_info.get("channel")
    if provider is not None and channel is not None:
        return channel_scope(provider, channel)
    return OPERATOR_ONLY


def refusal(status: int, token_given: bool) -> web.Response:
    """The answer to a refused request: 401 with its challenge, or a 404 that says no more than
    an unknown path does."""
    if status == 401:
        body = {"error": "a bearer token is needed (Authorization: Bearer <token>)"}
        headers = {"WWW-Authenticate": challenge(token_given)}
        return web.Response(body=orjson.dumps(body), status=401, content_type="application/json", headers=headers)
    return web.Response(body=orjson.dumps({"error": "not found"}), status=404, content_type="application/json")


def access_middleware(
    current: Callable[[], Access | None], scope: Callable[[str, dict[str, str]], Scope] = scope_of
) -> Middleware:
    """The middleware: decide on the request's `scope`, remember the principal for the handler,
    or refuse."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        access = current()
        if access is None:  # development mode: open, as before tenants
            request[_GRANT] = (None, None)
            return await handler(request)
        authorization = request.headers.get("Authorization")
        decision = access.decide(scope(request.path, dict(request.match_info)), authorization)
        if not decision.allowed:
            # The principal's label only: never the header, which holds the token.
            log.info(
                "refused %s %s with %s (%s)",
                request.method,
                request.path,
                decision.status,
                decision.principal.label if decision.principal else "no valid token",
            )
            return refusal(decision.status, token_given=authorization is not None)
        request[_GRANT] = (access, decision.principal)
        return await handler(request)

    return middleware


def request_grant(request: object) -> Grant | None:
    """(access rules, principal) the middleware granted this request: (None, None) in development
    mode; None when the middleware did not run. `object`: Faust types its views' requests with
    an ABC of its own, while the object is aiohttp's."""
    if not isinstance(request, web.BaseRequest):
        return None
    return request.get(_GRANT)


def request_may_see(request: object, provider: str, channel: str) -> bool:
    """In a handler: may this request's principal read `channel` of `provider`? Fails closed when
    the middleware did not run."""
    grant = request_grant(request)
    if grant is None:
        return False
    access, principal = grant
    return may_see(access, principal, provider, channel)


def forwarded_headers(request: HasHeaders) -> dict[str, str]:
    """What a request forwarded to the worker that owns its key carries along: the token, so
    that the owner decides the same."""
    authorization = request.headers.get("Authorization")
    return {"Authorization": authorization} if authorization else {}


def register_access(app: object, current: Callable[[], ChannelsConfig | None]) -> None:
    """Put the middleware in front of every page of a Faust app's web server (before it starts).

    `current` returns the configuration in force (a reload swaps it: the rules follow)."""
    web_app = getattr(getattr(app, "web", None), "web_app", None)  # Faust's aiohttp driver holds it
    if not isinstance(web_app, web.Application):
        msg = "the worker's web server is not aiohttp's: its pages cannot be access-controlled"
        raise TypeError(msg)
    web_app.middlewares.append(access_middleware(CurrentAccess(current)))
