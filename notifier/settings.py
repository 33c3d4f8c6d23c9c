"""The notifier's settings: one object, from STATUSFLOW_NOTIFY_* variables and an optional file.

The two simplest cases need no file: STATUSFLOW_NOTIFY_WEBHOOK_URL or
STATUSFLOW_NOTIFY_ALERTMANAGER_URL alone configures a sink that every alert is routed to.
Several named sinks of a kind, routes and tenants, which do not fit in variables, come from the
file named by STATUSFLOW_NOTIFY_FILE (YAML, or TOML when its name ends in .toml); a variable set
in the environment wins over the same key in the file.

A sink is known by its name everywhere: routes, the dedup ledger, parking, metrics. The
single-sink settings (`webhook_url`, `alertmanager_url`, `smtp_host`) configure sinks named after
their kind, the names they have always had, so a ledger and parked work written before named
sinks existed still match them.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
    YamlConfigSettingsSource,
)

from schemas.settings import KafkaSettings

SinkKind = Literal["alertmanager", "webhook", "email"]
SeverityName = Literal["info", "warning", "critical"]

FILE_VARIABLE = "STATUSFLOW_NOTIFY_FILE"

# No `|`: the ledger key is `<sink>|<alert id>`. No spaces: names go into metric labels and logs.
SINK_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:-]*$"


class RetryPolicy(BaseModel):
    """Attempts per notification and the doubling backoff between them, before it is parked."""

    model_config = ConfigDict(frozen=True)

    attempts: int = Field(ge=1)
    base_s: float = Field(gt=0)
    max_s: float = Field(gt=0)


class _NamedSink(BaseModel):
    """What every named sink has: a name, and optional overrides of the global delivery settings."""

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    kind: ClassVar[SinkKind]

    name: str = Field(pattern=SINK_NAME_PATTERN)
    timeout_s: float | None = Field(default=None, gt=0, description="One attempt; default sink_timeout_s.")
    retry_attempts: int | None = Field(default=None, ge=1, description="Default retry_attempts.")
    retry_base_s: float | None = Field(default=None, gt=0, description="Default retry_base_s.")
    retry_max_s: float | None = Field(default=None, gt=0, description="Default retry_max_s.")


class WebhookSinkConfig(_NamedSink):
    """An HTTP webhook: JSON POST with a Slack-compatible `text`."""

    kind: ClassVar[SinkKind] = "webhook"

    url: str = Field(min_length=1)
    secret: SecretStr | None = Field(default=None, description="Signs the body: X-Statusflow-Signature.")


class AlertmanagerSinkConfig(_NamedSink):
    """A Prometheus Alertmanager (v2 API)."""

    kind: ClassVar[SinkKind] = "alertmanager"

    url: str = Field(min_length=1, description="Base URL; the sink POSTs /api/v2/alerts.")
    message_ttl_s: float | None = Field(default=None, gt=0, description="Default alertmanager_message_ttl_s.")
    condition_ttl_s: float | None = Field(default=None, gt=0, description="Default alertmanager_condition_ttl_s.")


class EmailSinkConfig(_NamedSink):
    """Email over SMTP."""

    kind: ClassVar[SinkKind] = "email"

    host: str = Field(min_length=1)
    port: int = Field(default=587, ge=1, le=65535)
    starttls: bool = Field(default=True, description="Upgrade with STARTTLS (port 587).")
    tls: bool = Field(default=False, description="Implicit TLS from the first byte (port 465).")
    username: str | None = None
    password: SecretStr | None = None
    validate_certs: bool = True
    # `from` in the file (a Python keyword, hence the field's name).
    sender: str = Field(default="statusflow@localhost", validation_alias=AliasChoices("from", "sender"))
    to: tuple[str, ...] = Field(min_length=1, description="Recipients: a list, or one comma-separated string.")

    @field_validator("to", mode="before")
    @classmethod
    def _comma_separated(cls, value: Any) -> Any:
        if isinstance(value, str):
            return tuple(address.strip() for address in value.split(",") if address.strip())
        return value


SinkConfig = WebhookSinkConfig | AlertmanagerSinkConfig | EmailSinkConfig


class NamedSinks(BaseModel):
    """The file's `sinks`: lists of named sinks per kind (TOML `[[sinks.webhook]]`)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    alertmanager: tuple[AlertmanagerSinkConfig, ...] = ()
    webhook: tuple[WebhookSinkConfig, ...] = ()
    email: tuple[EmailSinkConfig, ...] = ()


class Route(BaseModel):
    """Alerts that match every condition given go to `sinks`. An unset condition matches anything.

    Routes are tried in order; the first that matches decides, unless it says `continue`, in which
    case later routes may add sinks (like Alertmanager's routes). No match: the default route.
    """

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    name: str = ""
    tenants: frozenset[str] | None = None
    channels: frozenset[str] | None = None
    providers: frozenset[str] | None = None
    kinds: frozenset[str] | None = None
    severities: frozenset[SeverityName] | None = None
    min_severity: SeverityName | None = None
    sinks: tuple[str, ...] = Field(description="Names of configured sinks.")
    keep_going: bool = Field(default=False, alias="continue")


class NotifySettings(BaseSettings):
    """Everything the notifier can be configured with (env prefix STATUSFLOW_NOTIFY_)."""

    model_config = SettingsConfigDict(
        env_prefix="STATUSFLOW_NOTIFY_", frozen=True, extra="ignore", populate_by_name=True
    )

    kafka: KafkaSettings = Field(default_factory=KafkaSettings, description="Broker and topics (STATUSFLOW_*).")
    group_id: str = Field(default="statusflow-notifier", description="The notifier's own consumer group.")
    # Kept for deployments that set them; the topic names live with the others now
    # (STATUSFLOW_TOPIC_ALERTS_PARKED, STATUSFLOW_TOPIC_ALERTS_DELIVERED), which these override.
    parked_topic: str = Field(default="", description="Undeliverable notifications; default the alerts_parked topic.")
    delivered_topic: str = Field(
        default="", description="Compacted ledger of delivered alert ids; default the alerts_delivered topic."
    )
    ledger_retention_ms: int = Field(
        default=14 * 86_400_000, ge=-1, description="Kept longer than wa.alerts, so no redelivered alert is forgotten."
    )

    # The single-sink settings: each configures the sink named after its kind when its address is
    # set. Several sinks of a kind: `sinks` in the notify file.
    alertmanager_url: str | None = Field(default=None, description="Alertmanager base URL (POST /api/v2/alerts).")
    alertmanager_message_ttl_s: float = Field(
        default=3600, gt=0, description="How long a per-message alert stays active in Alertmanager."
    )
    alertmanager_condition_ttl_s: float = Field(
        default=86400, gt=0, description="A firing channel condition stays active this long unless resolved."
    )
    webhook_url: str | None = Field(default=None, description="JSON POST with a Slack-compatible `text`.")
    webhook_secret: SecretStr | None = Field(default=None, description="Signs the body: X-Statusflow-Signature.")
    smtp_host: str | None = Field(default=None, description="Email sink: the SMTP server.")
    smtp_port: int = Field(default=587, ge=1, le=65535)
    smtp_starttls: bool = Field(default=True, description="Upgrade with STARTTLS (port 587).")
    smtp_tls: bool = Field(default=False, description="Implicit TLS from the first byte (port 465).")
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_validate_certs: bool = True
    email_from: str = "statusflow@localhost"
    email_to: str = Field(default="", description="Comma-separated recipients.")
    sink_timeout_s: float = Field(default=10.0, gt=0, description="One delivery attempt.")
    sinks: NamedSinks = Field(default_factory=NamedSinks, description="Named sinks per kind (the notify file).")

    # Routing.
    routes: tuple[Route, ...] = ()
    default_sinks: tuple[str, ...] | None = Field(
        default=None, description="Where unmatched alerts go; every configured sink when unset."
    )
    tenants: dict[str, frozenset[str]] = Field(
        default_factory=dict, description="Tenant name -> its channels (the `tenant` label and route condition)."
    )

    # Grouping and delivery.
    group_interval_s: float = Field(
        default=10.0, gt=0, description="Per-message alerts of one channel within this interval: one notification."
    )
    group_examples: int = Field(default=5, ge=1, description="Examples named in a grouped notification.")
    retry_attempts: int = Field(default=4, ge=1, description="Attempts per notification before it is parked.")
    retry_base_s: float = Field(default=0.5, gt=0)
    retry_max_s: float = Field(default=8.0, gt=0)
    redrive_interval_s: float = Field(default=5.0, gt=0, description="How often a down sink's parked work is tried.")

    host: str = "127.0.0.1"
    port: int = Field(default=8095, ge=0, le=65535, description="GET /metrics and /healthz.")
    log_level: str = "info"

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        path = os.environ.get(FILE_VARIABLE)
        if path:
            if not Path(path).is_file():
                raise ValueError(f"{FILE_VARIABLE}={path}: no such file")
            if path.endswith(".toml"):
                sources.append(TomlConfigSettingsSource(settings_cls, toml_file=path))
            else:
                sources.append(YamlConfigSettingsSource(settings_cls, yaml_file=path))
        return tuple(sources)

    @model_validator(mode="after")
    def _sinks_are_unique_and_routes_name_them(self) -> NotifySettings:
        if self.smtp_host and not self.recipients():
            raise ValueError("the email sink needs STATUSFLOW_NOTIFY_EMAIL_TO")
        names = [config.name for config in self.sink_configs()]
        if repeated := sorted({name for name in names if names.count(name) > 1}):
            raise ValueError(
                f"sink names must be unique, {repeated} repeat (STATUSFLOW_NOTIFY_WEBHOOK_URL, _ALERTMANAGER_URL and "
                "_SMTP_HOST configure sinks named webhook, alertmanager and email)"
            )
        problems = [
            f"route {route.name or number} names sink {sink!r}"
            for number, route in enumerate(self.routes, start=1)
            for sink in route.sinks
            if sink not in names
        ]
        problems += [f"default_sinks names sink {sink!r}" for sink in self.default_sinks or () if sink not in names]
        if problems:
            configured = ", ".join(names) or "none"
            raise ValueError(f"{'; '.join(problems)}, which is not configured (configured sinks: {configured})")
        return self

    def sink_configs(self) -> tuple[SinkConfig, ...]:
        """Every configured sink: the single-sink settings first (named after their kind), then the
        named ones of the file, in its order per kind."""
        single: list[SinkConfig] = []
        if self.alertmanager_url:
            single.append(AlertmanagerSinkConfig(name="alertmanager", url=self.alertmanager_url))
        if self.webhook_url:
            single.append(WebhookSinkConfig(name="webhook", url=self.webhook_url, secret=self.webhook_secret))
        if self.smtp_host:
            single.append(
                EmailSinkConfig(
                    name="email",
                    host=self.smtp_host,
                    port=self.smtp_port,
                    starttls=self.smtp_starttls,
                    tls=self.smtp_tls,
                    username=self.smtp_username,
                    password=self.smtp_password,
                    validate_certs=self.smtp_validate_certs,
                    sender=self.email_from,
                    to=tuple(self.recipients()),
                )
            )
        return (*single, *self.sinks.alertmanager, *self.sinks.webhook, *self.sinks.email)

    def sink_names(self) -> tuple[str, ...]:
        """The configured sinks' names, in the order of `sink_configs`."""
        return tuple(config.name for config in self.sink_configs())

    def retry_policy(self, config: SinkConfig | None = None) -> RetryPolicy:
        """The sink's retry settings, the global ones where it sets none (or for no config)."""
        policy = RetryPolicy(attempts=self.retry_attempts, base_s=self.retry_base_s, max_s=self.retry_max_s)
        if config is None:
            return policy
        return RetryPolicy(
            attempts=config.retry_attempts or policy.attempts,
            base_s=config.retry_base_s or policy.base_s,
            max_s=config.retry_max_s or policy.max_s,
        )

    def timeout_s(self, config: SinkConfig) -> float:
        """One delivery attempt to the sink."""
        return config.timeout_s or self.sink_timeout_s

    def recipients(self) -> list[str]:
        """The single email sink's recipients."""
        return [address.strip() for address in self.email_to.split(",") if address.strip()]

    def default_route(self) -> tuple[str, ...]:
        """Sinks of alerts that no route matches."""
        return self.default_sinks if self.default_sinks is not None else self.sink_names()

    def parked(self) -> str:
        """The parking topic's name."""
        return self.parked_topic or self.kafka.topics.alerts_parked

    def delivered(self) -> str:
        """The ledger topic's name."""
        return self.delivered_topic or self.kafka.topics.alerts_delivered
