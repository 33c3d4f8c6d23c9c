"""The receiver's settings, read from the environment once in the entry point."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import SettingsConfigDict

from schemas.privacy import Privacy, PrivacyMode
from schemas.settings import KafkaSettings


class ReceiverSettings(KafkaSettings):
    """Everything the receiver can be configured with (env prefix STATUSFLOW_)."""

    model_config = SettingsConfigDict(env_prefix="STATUSFLOW_", frozen=True, extra="ignore", populate_by_name=True)

    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)
    reuse_port: bool = Field(default=False, description="Let several receiver processes share one port.")
    max_body_bytes: int = Field(default=1024 * 1024, ge=1024, description="Larger bodies get 413.")
    body_read_timeout_s: float = Field(
        default=10.0, gt=0, description="A body not fully received in this time gets 408 (slow clients)."
    )
    publish_timeout_s: float = Field(
        default=10.0, gt=0, description="Broker ack deadline per webhook; past it the webhook goes to the spool."
    )
    channels_file: Path | None = Field(
        default=None, description="TOML or YAML channels file; unset means development mode."
    )
    channels_poll_s: float = Field(
        default=1.0, ge=0, description="How often the channels file is checked for changes (0: on SIGHUP only)."
    )
    trust_forwarded_headers: bool = Field(
        default=True, description="Rebuild the URL the provider called from X-Forwarded-Proto/Host."
    )
    meta_app_secret: SecretStr | None = Field(
        default=None, description="Development mode: turns on X-Hub-Signature-256 checks."
    )
    meta_verify_token: SecretStr | None = Field(default=None, description="Development mode: answers hub.challenge.")
    allow_unauthenticated_loopback: bool = Field(
        default=True,
        description="Development mode: accept unsigned webhooks from loopback when no secret is set.",
    )
    publish_linger_ms: int = Field(
        default=5,
        ge=0,
        le=100,
        description="How long the producer gathers webhooks into one broker request (adds at most this to each ack).",
    )
    spool_enabled: bool = Field(default=True, description="Spool to local disk when Kafka does not acknowledge.")
    spool_dir: Path = Field(default=Path(".local/receiver-spool"), description="Root of the spool slots.")
    spool_max_bytes: int = Field(default=256 * 1024 * 1024, ge=4096, description="Spool bound; beyond it 503.")
    spool_segment_bytes: int = Field(default=16 * 1024 * 1024, ge=4096, description="Size of one spool file.")
    drain_batch: int = Field(default=500, ge=1, description="Spooled records sent to Kafka per round.")
    retry_after_s: int = Field(default=5, ge=1, description="Retry-After of a 503.")
    shutdown_timeout_s: float = Field(default=10.0, gt=0, description="Grace for in-flight requests on shutdown.")
    log_level: str = "info"
    log_format: Literal["json", "text"] = "json"
    recipient_privacy: PrivacyMode = Field(
        default="mask", description="Phone numbers in logs and audit excerpts: mask or hash (plain masks logs too)."
    )
    recipient_hash_key: SecretStr | None = Field(default=None, description="Key of the hash mode's HMAC.")

    @model_validator(mode="after")
    def _privacy_is_usable(self) -> ReceiverSettings:
        self.privacy()  # hash without a key fails at start-up, not at the first request
        return self

    def privacy(self) -> Privacy:
        """What of a phone number the receiver may write outside the raw topic."""
        key = self.recipient_hash_key.get_secret_value().encode() if self.recipient_hash_key else None
        return Privacy(self.recipient_privacy, key)
