"""Channels: which provider calls us under which name, how it authenticates, what it wants.

One configuration file (TOML or YAML, chosen by extension) names every channel of a
deployment; the receiver routes and authenticates with it, the stream worker filters statuses
with it. Secrets may stay out of the file: `STATUSFLOW_CHANNEL_<NAME>_SECRET` and
`STATUSFLOW_CHANNEL_<NAME>_VERIFY_TOKEN` override them (name upper-cased, `-` as `_`).
A channel may name its `tenant`; the `[[tenants]]` and `[operator]` tables hold who may read
which channels through the worker's API and the dashboard (schemas/tenants.py, schemas/access.py).

Pure pydantic: no I/O framework is imported here, and the environment is passed in by the
entry point rather than read.
"""

from __future__ import annotations

import re
import tomllib
import zoneinfo
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal, get_args

import yaml
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator, model_validator

from schemas.errors import ConfigurationError
from schemas.tenants import OperatorConfig, TenantConfig, check_distinct_tokens, parse_operator, parse_tenants

Provider = Literal["meta", "twilio", "infobip", "vonage", "gupshup", "aivo", "weni", "wpp", "generic"]
CanonicalStatus = Literal["queued", "created", "sent", "failed", "delivered", "read"]
AuthKind = Literal["none", "meta_hmac", "twilio_signature", "vonage_jwt", "header_token", "basic"]

PROVIDERS: tuple[str, ...] = get_args(Provider)
DEFAULT_CHANNEL = "default"
DEFAULT_TOKEN_HEADER = "x-auth-token"  # noqa: S105 - a header name, not a secret
NAME_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,62}$"
ENV_SECRET_FIELDS = ("secret", "verify_token")


class AuthConfig(BaseModel):
    """How one channel proves a request came from its provider."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: AuthKind = "none"
    secret: SecretStr | None = Field(
        default=None,
        description="Meta app secret, Twilio auth token, Vonage signature secret, static token or basic password.",
    )
    header: str | None = Field(default=None, description=f"header_token: the header's name ({DEFAULT_TOKEN_HEADER}).")
    username: str | None = Field(default=None, description="basic: the expected user name.")
    verify_token: SecretStr | None = Field(default=None, description="meta: answers the hub.challenge handshake.")
    max_age_s: int | None = Field(default=None, gt=0, description="vonage_jwt: refuse tokens issued longer ago.")

    @model_validator(mode="after")
    def _required_per_kind(self) -> AuthConfig:
        if self.kind != "none" and (self.secret is None or not self.secret.get_secret_value()):
            msg = f"auth kind {self.kind!r} needs a secret (in the file or STATUSFLOW_CHANNEL_<NAME>_SECRET)"
            raise ValueError(msg)
        if self.kind == "basic" and not self.username:
            raise ValueError("auth kind 'basic' needs a username")
        if self.header is not None and self.kind != "header_token":
            raise ValueError("'header' only applies to auth kind 'header_token'")
        return self

    @property
    def token_header(self) -> str:
        """header_token: the lower-cased header carrying the token."""
        return (self.header or DEFAULT_TOKEN_HEADER).lower()


class ChannelConfig(BaseModel):
    """One channel: a provider account (a number, an app) that posts to /webhooks/{provider}/{name}."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(pattern=NAME_PATTERN)
    provider: Provider
    auth: AuthConfig = Field(default_factory=AuthConfig)
    statuses: frozenset[CanonicalStatus] | None = Field(
        default=None, description="Canonical statuses the stream worker keeps; all when unset."
    )
    public_url: str | None = Field(
        default=None,
        description="Base URL the provider calls (scheme://host[:port][/prefix]); signatures over the URL use it.",
    )
    tenant: str | None = Field(
        default=None,
        pattern=NAME_PATTERN,
        description="The [[tenants]] name whose API token may read this channel; unset: the operator only.",
    )
    options: dict[str, Any] = Field(
        default_factory=dict,
        description=(
            "Settings for the provider's adapter: field paths and words (generic, wpp; "
            "streams/adapters/generic.py) and `timezone`, the zone of times sent without one "
            "(aivo, wpp, generic; default UTC)."
        ),
    )

    @field_validator("public_url")
    @classmethod
    def _absolute_http(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError("public_url must start with http:// or https://")
        return value.rstrip("/") if value else value

    @field_validator("options")
    @classmethod
    def _known_timezone(cls, value: dict[str, Any]) -> dict[str, Any]:
        if "timezone" in value:
            check_timezone(value["timezone"])
        return value

    @field_validator("statuses")
    @classmethod
    def _not_empty(cls, value: frozenset[str] | None) -> frozenset[str] | None:
        if value is not None and not value:
            raise ValueError("statuses, when given, must name at least one status")
        return value

    def wants(self, status: str) -> bool:
        """True when this channel keeps `status` (every status when no filter is set)."""
        return self.statuses is None or status in self.statuses


class ChannelsConfig(BaseModel):
    """Every configured channel, by name."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    source: str = "<memory>"
    channels: tuple[ChannelConfig, ...]
    tenants: tuple[TenantConfig, ...] = ()
    operator: OperatorConfig | None = None

    @model_validator(mode="after")
    def _unique_names(self) -> ChannelsConfig:
        seen: set[str] = set()
        for channel in self.channels:
            key = env_name(channel.name)
            if key in seen:
                msg = f"channel {channel.name!r} is configured twice (names compare as {key})"
                raise ValueError(msg)
            seen.add(key)
        return self

    @model_validator(mode="after")
    def _known_tenants(self) -> ChannelsConfig:
        names = {tenant.name for tenant in self.tenants}
        for channel in self.channels:
            if channel.tenant is not None and channel.tenant not in names:
                known = ", ".join(sorted(names)) or "none: add a [[tenants]] table"
                msg = (
                    f"channel {channel.name!r} names tenant {channel.tenant!r}, "
                    f"which is not configured (tenants: {known})"
                )
                raise ValueError(msg)
        return self

    @property
    def access_controlled(self) -> bool:
        """True when tenants or an operator token are configured: the worker's API and the
        dashboard then require a bearer token (schemas/access.py)."""
        return bool(self.tenants) or self.operator is not None

    def get(self, name: str) -> ChannelConfig | None:
        """The channel called `name`, or None."""
        return next((c for c in self.channels if c.name == name), None)


_FIXED_OFFSET = re.compile(r"[+-]\d{2}:?\d{2}")


def check_timezone(name: object) -> None:
    """A channel's `timezone` option is an IANA name (`America/Sao_Paulo`), `UTC` or a fixed
    offset (`-03:00`); ValueError otherwise (the adapters read it with the same rules)."""
    if not isinstance(name, str) or not name.strip():
        msg = f"timezone must be an IANA time zone name such as 'America/Sao_Paulo', got {name!r}"
        raise ValueError(msg)
    text = name.strip()
    if text.upper() in {"UTC", "Z", "GMT"} or _FIXED_OFFSET.fullmatch(text):
        return
    try:
        zoneinfo.ZoneInfo(text)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError) as exc:
        msg = f"timezone {text!r} is not a known IANA time zone (e.g. 'America/Sao_Paulo', 'UTC', '-03:00')"
        raise ValueError(msg) from exc


def env_name(channel: str) -> str:
    """`shop-br` → `SHOP_BR`, the channel's part of its environment variables."""
    return channel.upper().replace("-", "_")


def _read(path: Path) -> Any:
    suffix = path.suffix.lower()
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        msg = f"{path}: cannot read the channels file: {exc.strerror or exc}"
        raise ConfigurationError(msg) from exc
    try:
        if suffix == ".toml":
            return tomllib.loads(text)
        if suffix in {".yaml", ".yml"}:
            return yaml.safe_load(text)
    except (tomllib.TOMLDecodeError, yaml.YAMLError) as exc:
        msg = f"{path}: not valid {suffix.lstrip('.').upper()}: {exc}"
        raise ConfigurationError(msg) from exc
    msg = f"{path}: the channels file must end in .toml, .yaml or .yml"
    raise ConfigurationError(msg)


def _with_env_secrets(raw: dict[str, Any], environ: Mapping[str, str]) -> dict[str, Any]:
    name = raw.get("name")
    if not isinstance(name, str):
        return raw
    auth = raw.get("auth", {})
    if not isinstance(auth, dict):
        return raw
    overrides = {
        field: environ[var]
        for field in ENV_SECRET_FIELDS
        if (var := f"STATUSFLOW_CHANNEL_{env_name(name)}_{field.upper()}") in environ
    }
    return {**raw, "auth": {**auth, **overrides}} if overrides else raw


def _describe(path: Path, channel: str, exc: ValidationError) -> str:
    problems = "; ".join(
        f"field {'.'.join(str(p) for p in error['loc']) or '(channel)'}: {error['msg']}" for error in exc.errors()
    )
    if channel.startswith("'"):
        problems = problems.replace("<NAME>", env_name(channel.strip("'")))
    return f"{path}: channel {channel}: {problems}"


def parse_channels(data: Any, environ: Mapping[str, str], source: str = "<memory>") -> ChannelsConfig:
    """Validate already-parsed configuration data (a mapping with a `channels` list)."""
    path = Path(source)
    if not isinstance(data, dict) or not isinstance(data.get("channels"), list) or not data["channels"]:
        msg = f"{source}: expected a non-empty 'channels' list at the top level"
        raise ConfigurationError(msg)
    extra = sorted(set(data) - {"channels", "tenants", "operator"})
    if extra:
        msg = f"{source}: unknown top-level keys {extra}; only 'channels', 'tenants' and 'operator' are read"
        raise ConfigurationError(msg)
    tenants = parse_tenants(data.get("tenants"), environ, source)
    operator = parse_operator(data.get("operator"), environ, source)
    check_distinct_tokens(tenants, operator, source)
    channels: list[ChannelConfig] = []
    for index, raw in enumerate(data["channels"]):
        label = repr(raw.get("name")) if isinstance(raw, dict) and raw.get("name") else f"#{index + 1}"
        if not isinstance(raw, dict):
            msg = f"{source}: channel {label}: expected a table of settings"
            raise ConfigurationError(msg)
        try:
            channels.append(ChannelConfig.model_validate(_with_env_secrets(raw, environ)))
        except ValidationError as exc:
            raise ConfigurationError(_describe(path, label, exc)) from exc
    try:
        return ChannelsConfig(source=source, channels=tuple(channels), tenants=tenants, operator=operator)
    except ValidationError as exc:
        problems = "; ".join(str(error["msg"]) for error in exc.errors())
        msg = f"{source}: {problems}"
        raise ConfigurationError(msg) from exc


def load_channels(path: Path, environ: Mapping[str, str]) -> ChannelsConfig:
    """Read and validate the channels file; ConfigurationError names the file, channel and field."""
    return parse_channels(_read(path), environ, source=str(path))
