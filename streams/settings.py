"""The worker's settings, read from the environment once in the entry point."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import SettingsConfigDict

from schemas.privacy import Privacy, PrivacyMode
from schemas.settings import KafkaSettings
from streams.domain.channel import Policy
from streams.domain.retention import Retention


class WorkerSettings(KafkaSettings):
    """Everything a stream worker can be configured with (env prefix STATUSFLOW_)."""

    model_config = SettingsConfigDict(env_prefix="STATUSFLOW_", frozen=True, extra="ignore", populate_by_name=True)

    app_id: str = Field(default="statusflow", description="Faust app id: consumer group and changelog prefix.")
    store: Literal["memory", "rocksdb"] = "memory"
    data_dir: str = Field(default=".local/worker", description="Where a rocksdb store lives.")
    rocksdb_write_buffer_mb: int = Field(
        default=8, ge=1, description="RocksDB store: memtable size per partition database (two at most)."
    )
    rocksdb_memory_mb: int = Field(
        default=128,
        ge=8,
        description="RocksDB store: one block cache shared by every table and partition database of the worker; "
        "memtables, index and filter blocks are charged to it (streams/faust_ext/rocksdb_memory.py).",
    )
    web_host: str = "127.0.0.1"
    web_port: int = Field(default=6066, ge=1, le=65535)
    log_level: str = "info"
    commit_interval_s: float = Field(default=1.0, gt=0)
    channels_file: Path | None = Field(
        default=None, description="The receiver's channels file: per-channel status filters apply here too."
    )
    channels_poll_s: float = Field(
        default=1.0, ge=0, description="How often the channels file is checked for changes (0: on SIGHUP only)."
    )
    session_timeout_s: float = Field(default=10.0, ge=1, description="Consumer group session timeout.")
    normalize_batch: int = Field(default=2000, ge=1, description="Raw webhooks per normalize batch.")
    normalize_linger_ms: int = Field(
        default=10, ge=0, description="How long a small normalize batch waits for more webhooks (0: never)."
    )
    fetch_min_bytes: int = Field(
        default=64 * 1024,
        ge=1,
        description="Bytes a consumer fetch waits for (up to fetch_max_wait_ms): one fetch carries a batch.",
    )
    fetch_max_wait_ms: int = Field(
        default=20, ge=0, le=1000, description="Longest a fetch waits for fetch_min_bytes (added latency per stage)."
    )
    batch_max_records: int = Field(
        default=100, ge=1, description="Records the track and channel agents take per batch (one broker round trip)."
    )
    batch_within_s: float = Field(
        default=0.01, gt=0, description="How long an agent waits for a batch to fill before processing what it has."
    )
    recovery_stall_s: float = Field(
        default=90, gt=0, description="A table recovery that makes no progress this long restarts the worker."
    )
    hang_after_s: float = Field(
        default=120,
        gt=0,
        description="Agents that process none of the records waiting on this worker's partitions this long, "
        "or an event loop that runs no timer this long, restart the worker.",
    )
    normalize_process: bool = Field(
        default=True, description="Run the normalize stage in a child process (a second core) instead of in-loop."
    )
    window_s: int = Field(default=60, ge=1, description="Metric window (tumbling, event time).")
    cohort_s: int = Field(
        default=3600, ge=1, description="Send-cohort length: a message counts in the cohort of its first event time."
    )
    window_grace_s: int = Field(default=5, ge=0, description="Wait after a window's end before publishing it.")
    lateness_s: int = Field(default=300, ge=0, description="Late data corrects a window for this long.")
    idle_close_s: int = Field(default=10, ge=1, description="A quiet channel publishes its open windows after this.")
    alert_limit_per_window: int = Field(default=20, ge=0, description="Per-message alerts per channel per window.")
    spike_threshold: float = Field(default=0.2, gt=0, le=1, description="Failure rate that raises a spike alert.")
    spike_min_volume: int = Field(default=20, ge=1, description="Messages needed before a spike can fire.")
    spike_windows: int = Field(default=5, ge=1, description="Windows in the sliding failure-rate spike window.")
    dead_letter_threshold: int = Field(default=10, ge=1, description="Dead letters per window that raise an alert.")
    stuck_after_s: int = Field(default=3600, ge=1, description="Age in queued, created or sent that alerts as stuck.")
    retention_finished_s: int = Field(
        default=7 * 86400, ge=1, description="Read or failed messages leave the table after this."
    )
    retention_unfinished_s: int = Field(
        default=30 * 86400, ge=1, description="Other messages leave (as expired) after this."
    )
    history_limit: int = Field(
        default=50, ge=0, description="Webhooks kept per message for GET /messages/…/history (0: no history)."
    )
    lag_interval_s: float = Field(default=5.0, gt=0, description="How often the consumer-lag gauge is measured.")
    stalled_partition_s: float = Field(
        default=30.0,
        gt=0,
        description="A partition of this worker whose committed offset stays below its end this long is re-read "
        "from that offset (records Faust skipped in a rebalance).",
    )
    tick_interval_s: float = Field(default=2.0, gt=0, description="How often channels close windows and roll up.")
    recipient_privacy: PrivacyMode = Field(
        default="mask", description="Recipient numbers in derived topics, the table and logs: plain, mask or hash."
    )
    recipient_hash_key: SecretStr | None = Field(default=None, description="Key of the hash mode's HMAC.")

    @model_validator(mode="after")
    def _privacy_is_usable(self) -> WorkerSettings:
        self.privacy()  # hash without a key fails at start-up, not at the first event
        return self

    def privacy(self) -> Privacy:
        """What of a recipient's number leaves the raw topic."""
        key = self.recipient_hash_key.get_secret_value().encode() if self.recipient_hash_key else None
        return Privacy(self.recipient_privacy, key)

    def retention(self) -> Retention:
        """How long messages stay in the table after their last event."""
        return Retention(finished_ms=self.retention_finished_s * 1000, unfinished_ms=self.retention_unfinished_s * 1000)

    def policy(self) -> Policy:
        """The channel agent's thresholds."""
        return Policy(
            window_ms=self.window_s * 1000,
            grace_ms=self.window_grace_s * 1000,
            lateness_ms=self.lateness_s * 1000,
            idle_close_ms=self.idle_close_s * 1000,
            alert_limit_per_window=self.alert_limit_per_window,
            spike_threshold=self.spike_threshold,
            spike_min_volume=self.spike_min_volume,
            spike_windows=self.spike_windows,
            dead_letter_threshold=self.dead_letter_threshold,
        )
