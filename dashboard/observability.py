"""The dashboard's own /metrics: what it folds from Kafka, for Prometheus and Grafana.

The worker's consumer lag and the funnel are computed here from the topics, so Prometheus
gets them without the worker exporting anything extra.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from prometheus_client import CollectorRegistry, Gauge

from dashboard.fold import STATUSES


@dataclasses.dataclass(frozen=True)
class DashboardMetrics:
    """Gauges set from each snapshot."""

    registry: CollectorRegistry
    consumer_lag: Gauge
    messages: Gauge
    campaign_messages: Gauge
    dead_letters: Gauge
    alerts_firing: Gauge
    alerts_seen: Gauge
    snapshot_age: Gauge

    @classmethod
    def create(cls) -> DashboardMetrics:
        """A fresh registry with every gauge registered."""
        registry = CollectorRegistry()
        prefix = "statusflow_dashboard"
        return cls(
            registry=registry,
            consumer_lag=Gauge(
                f"{prefix}_consumer_lag",
                "Records not yet committed by a worker consumer group, per topic.",
                ["group", "topic"],
                registry=registry,
            ),
            messages=Gauge(
                f"{prefix}_messages",
                "Messages that entered each status, summed over the metric windows held (wa.metrics).",
                ["provider", "channel", "status"],
                registry=registry,
            ),
            campaign_messages=Gauge(
                f"{prefix}_campaign_messages",
                "Messages that entered each status per campaign (wa.metrics, campaign scope).",
                ["provider", "channel", "campaign", "status"],
                registry=registry,
            ),
            dead_letters=Gauge(
                f"{prefix}_dead_letters",
                "Distinct dead letters read from wa.webhooks.dlq, per channel.",
                ["provider", "channel"],
                registry=registry,
            ),
            alerts_firing=Gauge(
                f"{prefix}_alerts_firing",
                "Channel conditions firing now (logout, failure-rate spike).",
                ["kind"],
                registry=registry,
            ),
            alerts_seen=Gauge(f"{prefix}_alerts_seen", "Distinct alerts read from wa.alerts.", registry=registry),
            snapshot_age=Gauge(
                f"{prefix}_lag_age_seconds", "Seconds since consumer lag was last measured.", registry=registry
            ),
        )

    def update(self, snapshot: Mapping[str, Any], now_ms: int) -> None:
        """Set every gauge from a snapshot (pure data in, gauges out)."""
        for row in snapshot["lag"]["rows"]:
            self.consumer_lag.labels(row["group"], row["topic"]).set(row["lag"])
        for row in snapshot["activity"]["channels"]:
            for status in STATUSES:
                self.messages.labels(row["provider"], row["channel"], status).set(row["counts"][status])
        for row in snapshot["activity"]["campaigns"]:
            for status in STATUSES:
                self.campaign_messages.labels(row["provider"], row["channel"], row["campaign"], status).set(
                    row["counts"][status]
                )
        for key, count in snapshot["dead_letters"]["by_channel"].items():
            provider, _, channel = key.partition(":")
            self.dead_letters.labels(provider, channel).set(count)
        kinds: dict[str, int] = {"channel_logout": 0, "failure_rate_spike": 0}
        for alert in snapshot["alerts"]["firing"]:
            kinds[alert["kind"]] = kinds.get(alert["kind"], 0) + 1
        for kind, count in kinds.items():
            self.alerts_firing.labels(kind).set(count)
        self.alerts_seen.set(snapshot["alerts"]["seen"])
        updated = snapshot["lag"].get("updated_at")
        if updated:
            self.snapshot_age.set(max(now_ms - updated, 0) / 1000)
