"""The dashboard's access control: the worker's middleware (streams/access_web.py) with the
dashboard's routes.

With tenants in the channels file (STATUSFLOW_CHANNELS_FILE), the page itself, its static files,
/healthz and /metrics stay open (the page holds no data: it asks for a token first); the
snapshot and the event stream need `Authorization: Bearer <token>` and carry only the channels
of the token's tenant (dashboard/scoped.py). The page sends the header on both, the stream
being read with fetch rather than EventSource, which cannot send headers: a token never
travels in a URL, where access logs and browser history would keep it.
"""

from __future__ import annotations

from aiohttp import web

from dashboard.scoped import Visible
from schemas.access import FILTERED, OPEN, OPERATOR_ONLY, Scope
from streams.access_web import request_grant

OPEN_PATHS = frozenset({"/", "/healthz", "/metrics"})
FILTERED_PATHS = frozenset({"/api/snapshot", "/api/stream"})


def scope_of(path: str, match_info: dict[str, str]) -> Scope:
    """What a dashboard request asks for, from its path."""
    if path in OPEN_PATHS or path.startswith("/static/"):
        return OPEN
    if path in FILTERED_PATHS:
        return FILTERED
    return OPERATOR_ONLY


def visible_to(request: web.Request) -> Visible | None:
    """The (provider, channel) pairs this request's principal may see; None: every one (the
    operator, development mode). Nothing at all when the middleware did not run."""
    grant = request_grant(request)
    if grant is None:
        return frozenset()
    access, principal = grant
    if access is None:
        return None
    if principal is None:
        return frozenset()
    return access.visible(principal)
