"""Tenants of the channels file: who may read which channels, and with which API token.

A deployment that serves several customers names each one in a `[[tenants]]` table with a
`name` and an `api_token`; a channel names its tenant with `tenant = "acme"`. An `[operator]`
table (or `STATUSFLOW_OPERATOR_TOKEN`) holds the token that sees every channel. Tokens may stay
out of the file like channel secrets do: `STATUSFLOW_TENANT_<NAME>_TOKEN` (name upper-cased,
`-` as `_`) and `STATUSFLOW_OPERATOR_TOKEN` override the file.

Tokens are SecretStr from the moment they are read: their repr is masked and no error message
here quotes one. Pure pydantic, the environment passed in (as schemas/channels.py does).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator

from schemas.errors import ConfigurationError

#: Same pattern as channel names (schemas.channels.NAME_PATTERN; not imported: channels imports us).
TENANT_NAME_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,62}$"
OPERATOR_TOKEN_ENV = "STATUSFLOW_OPERATOR_TOKEN"  # noqa: S105 - a variable's name, not a secret
#: Shorter tokens are guessable by the few thousand tries a 401 costs nothing to make.
MIN_TOKEN_CHARS = 16


def tenant_env_name(tenant: str) -> str:
    """`acme-br` → `ACME_BR` (the rule of channel names: schemas.channels.env_name)."""
    return tenant.upper().replace("-", "_")


def tenant_token_env(tenant: str) -> str:
    """The environment variable that overrides a tenant's `api_token`."""
    return f"STATUSFLOW_TENANT_{tenant_env_name(tenant)}_TOKEN"


def _usable(token: SecretStr | None, where: str) -> SecretStr:
    if token is None or not token.get_secret_value().strip():
        msg = f"needs an api_token ({where})"
        raise ValueError(msg)
    if len(token.get_secret_value()) < MIN_TOKEN_CHARS:
        msg = f"api_token is shorter than {MIN_TOKEN_CHARS} characters ({where}); use a long random one"
        raise ValueError(msg)
    return token


class TenantConfig(BaseModel):
    """One customer of a shared deployment: its name and the token its API calls carry."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(pattern=TENANT_NAME_PATTERN)
    api_token: SecretStr | None = Field(
        default=None, description="Bearer token of the tenant (or STATUSFLOW_TENANT_<NAME>_TOKEN)."
    )

    @field_validator("api_token")
    @classmethod
    def _present(cls, value: SecretStr | None) -> SecretStr | None:
        # A missing token is reported by parse_tenants, which knows the variable's name.
        return value if value is None or value.get_secret_value() else None

    @property
    def token(self) -> SecretStr:
        """The token (validated present by parse_tenants)."""
        assert self.api_token is not None
        return self.api_token


class OperatorConfig(BaseModel):
    """The operator's token: every channel, every tenant."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    api_token: SecretStr


def _problems(exc: ValidationError) -> str:
    # Messages only, never the input: an input here may be a token.
    return "; ".join(
        f"field {'.'.join(str(p) for p in error['loc']) or '(tenant)'}: {error['msg']}" for error in exc.errors()
    )


def parse_tenants(raw: Any, environ: Mapping[str, str], source: str) -> tuple[TenantConfig, ...]:
    """The `tenants` list of the channels file with tokens from the environment; ConfigurationError
    names the file, the tenant and the field (never the token)."""
    if raw is None:
        return ()
    if not isinstance(raw, list):
        msg = f"{source}: 'tenants' must be a list of tables ([[tenants]])"
        raise ConfigurationError(msg)
    tenants: list[TenantConfig] = []
    seen: dict[str, str] = {}
    for index, item in enumerate(raw):
        label = repr(item.get("name")) if isinstance(item, dict) and item.get("name") else f"#{index + 1}"
        if not isinstance(item, dict):
            msg = f"{source}: tenant {label}: expected a table of settings"
            raise ConfigurationError(msg)
        name = item.get("name")
        settings = item
        if isinstance(name, str) and (var := tenant_token_env(name)) in environ:
            settings = {**item, "api_token": environ[var]}
        try:
            tenant = TenantConfig.model_validate(settings)
            _usable(tenant.api_token, f"in the file or {tenant_token_env(tenant.name)}")
        except ValidationError as exc:
            msg = f"{source}: tenant {label}: {_problems(exc)}"
            raise ConfigurationError(msg) from exc
        except ValueError as exc:
            msg = f"{source}: tenant {label}: {exc}"
            raise ConfigurationError(msg) from exc
        key = tenant_env_name(tenant.name)
        if key in seen:
            msg = f"{source}: tenant {tenant.name!r} is configured twice (names compare as {key}, like {seen[key]!r})"
            raise ConfigurationError(msg)
        seen[key] = tenant.name
        tenants.append(tenant)
    return tuple(tenants)


def parse_operator(raw: Any, environ: Mapping[str, str], source: str) -> OperatorConfig | None:
    """The `[operator]` table, or STATUSFLOW_OPERATOR_TOKEN (which wins); None when neither is set."""
    if raw is not None and not isinstance(raw, dict):
        msg = f"{source}: 'operator' must be a table ([operator] with api_token)"
        raise ConfigurationError(msg)
    item = dict(raw or {})
    if OPERATOR_TOKEN_ENV in environ:
        item["api_token"] = environ[OPERATOR_TOKEN_ENV]
    if raw is None and "api_token" not in item:
        return None
    try:
        operator = OperatorConfig.model_validate(item)
        _usable(operator.api_token, f"in the file or {OPERATOR_TOKEN_ENV}")
    except ValidationError as exc:
        msg = f"{source}: operator: {_problems(exc)}"
        raise ConfigurationError(msg) from exc
    except ValueError as exc:
        msg = f"{source}: operator: {exc}"
        raise ConfigurationError(msg) from exc
    return operator


def check_distinct_tokens(tenants: tuple[TenantConfig, ...], operator: OperatorConfig | None, source: str) -> None:
    """Each token names one principal: two tenants (or a tenant and the operator) sharing one
    would make a request's tenant a matter of table order."""
    owners: list[tuple[str, str]] = [(f"tenant {t.name!r}", t.token.get_secret_value()) for t in tenants]
    if operator is not None:
        owners.append(("the operator", operator.api_token.get_secret_value()))
    for i, (first, token) in enumerate(owners):
        for second, other in owners[i + 1 :]:
            if token == other:
                msg = f"{source}: {first} and {second} have the same api_token; give each its own"
                raise ConfigurationError(msg)
