"""Typed views of the public records (a test keeps them equal to the `.avsc` fields).

Times are epoch milliseconds (UTC); the codec does not turn them into datetimes.
"""

from __future__ import annotations

from typing import Any, TypedDict

# A message's key, `provider:channel:message_id` (a message is identified by all three: two
# channels' message 42 are two messages), split the one way the pipeline splits it.
from streams.domain.events import MessageKey, parse_message_key


class StatusChange(TypedDict):
    """wa.status.changes: a real change of one message's state, keyed `message_key`
    (`provider:channel:message_id`: `parse_message_key` splits it)."""

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


class CohortFunnel(TypedDict):
    """wa.funnel (compacted): the whole current counts of one send cohort of a channel or campaign.

    An upsert: the last record per key (`provider:channel@cohort_start`, or
    `provider:channel#campaign@cohort_start`), i.e. the highest `revision` per `funnel_id`, is
    the cohort's truth. Rates are within [0, 1] (None without a denominator).
    """

    funnel_id: str
    revision: int
    scope: str
    provider: str
    channel: str
    campaign: str | None
    cohort_start: int
    cohort_end: int
    attempted: int
    delivered: int
    delivered_implied: int
    read: int
    failed: int
    expired: int
    pending: int
    pending_queued: int
    pending_created: int
    pending_sent: int
    failures_by_reason: dict[str, int]
    failures_by_code: dict[str, int]
    delivery_rate: float | None
    read_rate: float | None
    failure_rate: float | None
    sent_to_delivered: list[int]
    delivered_to_read: list[int]
    sent_to_delivered_ms: dict[str, int]
    delivered_to_read_ms: dict[str, int]


def funnel_key(record: CohortFunnel | dict[str, Any]) -> str:
    """The key of a CohortFunnel record on wa.funnel, rebuilt from its fields."""
    scope = f"{record['provider']}:{record['channel']}"
    if record.get("campaign") is not None:
        scope += f"#{record['campaign']}"
    return f"{scope}@{record['cohort_start']}"


__all__ = [
    "TYPED",
    "Alert",
    "CohortFunnel",
    "MessageKey",
    "MetricWindow",
    "StatusChange",
    "funnel_key",
    "parse_message_key",
]

# The schema each typed view describes.
TYPED = {
    "status_change": StatusChange,
    "alert": Alert,
    "metric_window": MetricWindow,
    "cohort_funnel": CohortFunnel,
}
