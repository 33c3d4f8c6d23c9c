"""The dashboard's settings, read from the environment once in the entry point."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from schemas.settings import KafkaSettings


class DashboardSettings(KafkaSettings):
    """Everything the dashboard can be configured with (env prefix STATUSFLOW_)."""

    model_config = SettingsConfigDict(env_prefix="STATUSFLOW_", frozen=True, extra="ignore", populate_by_name=True)

    dashboard_host: str = "127.0.0.1"
    dashboard_port: int = Field(default=8090, ge=0, le=65535)
    app_id: str = Field(default="statusflow", description="The worker's app id: its consumer groups are watched.")
    dashboard_lag_groups: str = Field(
        default="",
        description="Comma-separated consumer groups to watch; empty: the worker's (<app id>-normalize, <app id>).",
    )
    dashboard_receiver_metrics: str = Field(
        default="http://127.0.0.1:8080/metrics", description="Comma-separated /metrics URLs of the receivers."
    )
    dashboard_lookback_s: int = Field(default=86400, ge=1, description="Read records produced this long ago or later.")
    dashboard_windows_per_scope: int = Field(
        default=1440, ge=1, description="Metric windows kept per channel/campaign."
    )
    dashboard_series_points: int = Field(default=60, ge=2, description="Windows drawn in the rate charts.")
    dashboard_alerts_kept: int = Field(default=50, ge=1, description="Latest alerts kept and shown.")
    dashboard_refresh_s: float = Field(default=2.0, gt=0, description="How often lag, receivers and the page refresh.")
    channels_file: Path | None = Field(
        default=None,
        description="The receiver's channels file: with [[tenants]] in it, the page asks for a token and "
        "shows a tenant its channels only.",
    )
    channels_poll_s: float = Field(
        default=1.0, ge=0, description="How often the channels file is checked for changes (0: on SIGHUP only)."
    )
    log_level: str = "info"

    def lag_groups(self) -> list[str]:
        """The consumer groups whose lag is shown."""
        configured = [g.strip() for g in self.dashboard_lag_groups.split(",") if g.strip()]
        return configured or [f"{self.app_id}-normalize", self.app_id]

    def receiver_metrics_urls(self) -> list[str]:
        """The receivers' /metrics URLs."""
        return [u.strip() for u in self.dashboard_receiver_metrics.split(",") if u.strip()]
