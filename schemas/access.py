"""Who may read what: a bearer token → a principal; may that principal see (provider, channel)?

Pure: the worker's and the dashboard's aiohttp middlewares (streams/access_web.py,
dashboard/access_web.py) only map a request to a `Scope` and a decision to a response.

* Without tenants and without an operator token (development mode) there is no `Access`:
  everything is open, as before tenants existed.
* With them, every request outside the open paths needs `Authorization: Bearer <token>`; a
  missing or unknown token is 401. A tenant sees the channels that name it; another tenant's
  channel or message is 404, never 403, so a tenant cannot learn that it exists. The operator
  sees every channel.

Tokens are compared as SHA-256 digests with hmac.compare_digest, against every configured token
without stopping at a match: the time taken depends neither on how much of a token matched
nor on which one did (nor on the candidate's length).
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
from collections.abc import Iterable, Mapping

from schemas.channels import ChannelsConfig

#: The tenant label of a channel without a tenant (and of anything not a configured channel):
#: label values come from the configuration only, so a metric's series stay bounded.
NO_TENANT = "none"
#: RFC 6750: the challenge of a 401.
REALM = "statusflow"


@dataclasses.dataclass(frozen=True, slots=True)
class Principal:
    """Who a token belongs to: a tenant by name, or the operator (`tenant` None)."""

    tenant: str | None

    @property
    def is_operator(self) -> bool:
        """True for the operator token, which sees every channel."""
        return self.tenant is None

    @property
    def label(self) -> str:
        """For logs: the tenant's name or `operator` (never the token)."""
        return self.tenant if self.tenant is not None else "operator"


OPERATOR = Principal(tenant=None)


@dataclasses.dataclass(frozen=True, slots=True)
class Scope:
    """What a request asks for, as its app's middleware reads it from the route.

    kind: `open` (health, readiness, metrics, static files), `channel` (one provider's channel,
    named by the request), `filtered` (a principal is needed; the handler shows only what
    `may_see` allows, e.g. a list or a message found under an id), `operator` (anything else).
    """

    kind: str
    provider: str = ""
    channel: str = ""


OPEN = Scope("open")
FILTERED = Scope("filtered")
OPERATOR_ONLY = Scope("operator")


def channel_scope(provider: str, channel: str) -> Scope:
    """A request for one channel of one provider."""
    return Scope("channel", provider, channel)


@dataclasses.dataclass(frozen=True, slots=True)
class Decision:
    """200 (go on, as `principal`), 401 (no or unknown token) or 404 (not this principal's)."""

    status: int
    principal: Principal | None = None

    @property
    def allowed(self) -> bool:
        """True when the request goes on to its handler."""
        return self.status == 200


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8")).digest()


def bearer_token(authorization: str | None) -> str | None:
    """The token of an `Authorization: Bearer <token>` header (scheme case-insensitive), else None."""
    if not authorization:
        return None
    scheme, _, token = authorization.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        return None
    return token


def challenge(token_given: bool) -> str:
    """The WWW-Authenticate value of a 401 (RFC 6750: invalid_token when a token was refused)."""
    return f'Bearer realm="{REALM}", error="invalid_token"' if token_given else f'Bearer realm="{REALM}"'


@dataclasses.dataclass(frozen=True)
class Access:
    """The access rules of one channels file: built once per configuration (and per reload)."""

    # (digest of a token, its principal), the operator's among them; never the tokens themselves.
    tokens: tuple[tuple[bytes, Principal], ...] = dataclasses.field(repr=False)
    # channel name → (provider, tenant or None): what each tenant may see.
    channels: Mapping[str, tuple[str, str | None]]
    tenants: frozenset[str]

    @classmethod
    def of(cls, config: ChannelsConfig | None) -> Access | None:
        """The rules of `config`; None (everything open) without tenants and operator token."""
        if config is None or not config.access_controlled:
            return None
        tokens = [(_digest(t.token.get_secret_value()), Principal(t.name)) for t in config.tenants]
        if config.operator is not None:
            tokens.append((_digest(config.operator.api_token.get_secret_value()), OPERATOR))
        return cls(
            tokens=tuple(tokens),
            channels={c.name: (c.provider, c.tenant) for c in config.channels},
            tenants=frozenset(t.name for t in config.tenants),
        )

    def authenticate(self, authorization: str | None) -> Principal | None:
        """The principal of a request's Authorization header; None when it names no configured token."""
        token = bearer_token(authorization)
        if token is None:
            return None
        candidate = _digest(token)
        found: Principal | None = None
        for digest, principal in self.tokens:  # no early exit: every token costs the same time
            if hmac.compare_digest(candidate, digest):
                found = principal
        return found

    def may_see(self, principal: Principal, provider: str, channel: str) -> bool:
        """True when `principal` may read `channel` of `provider` (the operator: always)."""
        if principal.is_operator:
            return True
        owner = self.channels.get(channel)
        return owner is not None and owner == (provider, principal.tenant)

    def visible(self, principal: Principal) -> frozenset[tuple[str, str]] | None:
        """The (provider, channel) pairs `principal` may read; None: all of them (the operator)."""
        if principal.is_operator:
            return None
        return frozenset((p, name) for name, (p, tenant) in self.channels.items() if tenant == principal.tenant)

    def decide(self, scope: Scope, authorization: str | None) -> Decision:
        """The middleware's whole decision for a request of `scope` carrying `authorization`."""
        if scope.kind == "open":
            return Decision(200)
        principal = self.authenticate(authorization)
        if principal is None:
            return Decision(401)
        if scope.kind == "filtered":
            return Decision(200, principal)
        if scope.kind == "channel" and self.may_see(principal, scope.provider, scope.channel):
            return Decision(200, principal)
        if principal.is_operator:
            return Decision(200, principal)
        return Decision(404, principal)


def may_see(access: Access | None, principal: Principal | None, provider: str, channel: str) -> bool:
    """A handler's check: True without access control (development mode) or when allowed.

    A request that reached a handler under access control always has a principal; None there
    means the middleware did not run, and nothing is shown."""
    if access is None:
        return True
    return principal is not None and access.may_see(principal, provider, channel)


def keep_visible(
    access: Access | None, principal: Principal | None, items: Iterable[tuple[str, str]]
) -> list[tuple[str, str]]:
    """The (provider, channel) pairs of `items` that `principal` may read, in order."""
    return [(p, c) for p, c in items if may_see(access, principal, p, c)]


def tenant_labels(config: ChannelsConfig | None) -> dict[str, str]:
    """Channel name → the `tenant` label of its figures. A channel without a tenant, and any name
    not configured, is NO_TENANT (`labels.get(channel, NO_TENANT)`): a label value never comes
    from a request, so the series stay bounded by the configuration."""
    if config is None:
        return {}
    return {c.name: c.tenant or NO_TENANT for c in config.channels}


class TenantLabeller:
    """`tenant_labels` of the configuration in force, rebuilt only when a reload swaps it: a
    request's or a batch's label is one dictionary look-up."""

    def __init__(self) -> None:
        self._config: ChannelsConfig | None = None
        self._labels: dict[str, str] = {}

    def __call__(self, config: ChannelsConfig | None, channel: str) -> str:
        """The tenant label of `channel` under `config` (NO_TENANT when unknown or unset)."""
        if config is not self._config:
            self._config, self._labels = config, tenant_labels(config)
        return self._labels.get(channel, NO_TENANT)
