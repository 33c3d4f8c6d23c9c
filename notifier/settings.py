"""The notifier's settings: one object, from STATUSFLOW_NOTIFY_* variables and an optional YAML file.

The two simplest cases need no file: STATUSFLOW_NOTIFY_WEBHOOK_URL or
STATUSFLOW_NOTIFY_ALERTMANAGER_URL alone configures a sink that every alert is routed to.
Routes and tenants, which do not fit in variables, come from the file named by
STATUSFLOW_NOTIFY_FILE; a variable set in the environment wins over the same key in the file.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    YamlConfigSettingsSource,
)

from schemas.settings import KafkaSettings

SinkName = Literal["alertmanager", "webhook", "email"]
SeverityName = Literal["info", "warning", "critical"]

FILE_VARIABLE = "STATUSFLOW_NOTIFY_FILE"


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
    sinks: tuple[SinkName, ...]
    keep_going: bool = Field(default=False, alias="continue")


class NotifySettings(BaseSettings):
    """Everything the notifier can be configured with (env prefix STATUSFLOW_NOTIFY_)."""

    model_config = SettingsConfigDict(
        env_prefix="STATUSFLOW_NOTIFY_", frozen=True, extra="ignore", populate_by_name=True
    )

    kafka: KafkaSettings = Field(default_factory=KafkaSettings, description="Broker and topics (STATUSFLOW_*).")
    group_id: str = Field(default="statusflow-notifier", description="The notifier's own consumer group.")
    parked_topic: str = Field(default="", description="Undeliverable notifications; default <alerts topic>.parked.")
    delivered_topic: str = Field(
        default="", description="Compacted ledger of delivered alert ids; default <alerts topic>.delivered."
    )
    ledger_retention_ms: int = Field(
        default=14 * 86_400_000, ge=-1, description="Kept longer than wa.alerts, so no redelivered alert is forgotten."
    )

    # Sinks: each is on when its address is set.
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

    # Routing.
    routes: tuple[Route, ...] = ()
    default_sinks: tuple[SinkName, ...] | None = Field(
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
            sources.append(YamlConfigSettingsSource(settings_cls, yaml_file=path))
        return tuple(sources)

    @model_validator(mode="after")
    def _routes_name_configured_sinks(self) -> NotifySettings:
        configured = set(self.sinks())
        named = {sink for route in self.routes for sink in route.sinks} | set(self.default_sinks or ())
        if unknown := named - configured:
            raise ValueError(f"routes name sinks that are not configured: {sorted(unknown)}")
        if self.smtp_host and not self.recipients():
            raise ValueError("the email sink needs STATUSFLOW_NOTIFY_EMAIL_TO")
        return self

    def sinks(self) -> tuple[SinkName, ...]:
        """The sinks whose address is set, in a fixed order."""
        on: list[SinkName] = []
        if self.alertmanager_url:
            on.append("alertmanager")
        if self.webhook_url:
            on.append("webhook")
        if self.smtp_host:
            on.append("email")
        return tuple(on)

    def recipients(self) -> list[str]:
        """The email sink's recipients."""
        return [address.strip() for address in self.email_to.split(",") if address.strip()]

    def default_route(self) -> tuple[SinkName, ...]:
        """Sinks of alerts that no route matches."""
        return self.default_sinks if self.default_sinks is not None else self.sinks()

    def parked(self) -> str:
        """The parking topic's name."""
        return self.parked_topic or f"{self.kafka.topics.alerts}.parked"

    def delivered(self) -> str:
        """The ledger topic's name."""
        return self.delivered_topic or f"{self.kafka.topics.alerts}.delivered"
