"""The receiver's settings, read from the environment once in the entry point."""

from __future__ import annotations

from pydantic import Field, SecretStr
from pydantic_settings import SettingsConfigDict

from schemas.settings import KafkaSettings


class ReceiverSettings(KafkaSettings):
    """Everything the receiver can be configured with (env prefix STATUSFLOW_)."""

    model_config = SettingsConfigDict(env_prefix="STATUSFLOW_", frozen=True, extra="ignore", populate_by_name=True)

    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)
    max_body_bytes: int = Field(default=1024 * 1024, ge=1024, description="Larger bodies get 413.")
    publish_timeout_s: float = Field(default=10.0, gt=0, description="Broker ack deadline per webhook.")
    meta_app_secret: SecretStr | None = Field(default=None, description="Turns on X-Hub-Signature-256 checks.")
    meta_verify_token: SecretStr | None = Field(default=None, description="Answers Meta's hub.challenge.")
    allow_unauthenticated_loopback: bool = Field(
        default=True,
        description="Local development: accept unsigned webhooks from loopback when no secret is set.",
    )
    log_level: str = "info"
