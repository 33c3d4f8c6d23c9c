"""The worker's settings, read from the environment once in the entry point."""

from __future__ import annotations

from typing import Literal

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from schemas.settings import KafkaSettings


class WorkerSettings(KafkaSettings):
    """Everything a stream worker can be configured with (env prefix STATUSFLOW_)."""

    model_config = SettingsConfigDict(env_prefix="STATUSFLOW_", frozen=True, extra="ignore", populate_by_name=True)

    app_id: str = Field(default="statusflow", description="Faust app id: consumer group and changelog prefix.")
    store: Literal["memory", "rocksdb"] = "memory"
    data_dir: str = Field(default=".local/worker", description="Where a rocksdb store lives.")
    web_host: str = "127.0.0.1"
    web_port: int = Field(default=6066, ge=1, le=65535)
    log_level: str = "info"
    commit_interval_s: float = Field(default=1.0, gt=0)
