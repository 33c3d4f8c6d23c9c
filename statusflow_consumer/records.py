"""Typed views of the public records (a test keeps them equal to the `.avsc` fields).

Times are epoch milliseconds (UTC); the codec does not turn them into datetimes.
"""

from __future__ import annotations

from typing import TypedDict


class StatusChange(TypedDict):
    """wa.status.changes: a real change of one message's state."""

    change_id: str
    message_key: str
    provider: str
    channel: str
    message_id: str
    campaign: str | None
    recipient: str | None
    previous_status: str | None
    status: str
    event_id: str
    queued_at: int | None
    created_at: int | None
    sent_at: int | None
    failed_at: int | None
    delivered_at: int | None
    read_at: int | None
    delivered_implied: bool
    failure_reason: str | None
    error_code: str | None
    error_title: str | None
    anomaly: bool
    correlation_id: str | None


class Alert(TypedDict):
    """wa.alerts: something an operator should know."""

    alert_id: str
    alert_key: str
    kind: str
    severity: str
    state: str
    provider: str | None
    channel: str | None
    campaign: str | None
    message_key: str | None
    error_code: str | None
    error_title: str | None
    detail: str
    occurred_at: int
    window_start: int | None
    window_end: int | None
    count: int
    value: float | None
    threshold: float | None


class MetricWindow(TypedDict):
    """wa.metrics: one revision of one tumbling window of a channel or campaign."""

    metric_id: str
    revision: int
    scope: str
    provider: str
    channel: str
    campaign: str | None
    window_start: int
    window_end: int
    transitions: dict[str, int]
    failures_by_reason: dict[str, int]
    failures_by_code: dict[str, int]
    delivery_rate: float | None
    read_rate: float | None
    failure_rate: float | None
    sent_to_delivered_ms: dict[str, int]
    delivered_to_read_ms: dict[str, int]
    final: bool


# The schema each typed view describes.
TYPED = {"status_change": StatusChange, "alert": Alert, "metric_window": MetricWindow}
