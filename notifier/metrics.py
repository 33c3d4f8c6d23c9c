"""The notifier's instruments, exposed on GET /metrics (docs/observability.md)."""

from __future__ import annotations

import dataclasses

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

PREFIX = "statusflow_notifier"


@dataclasses.dataclass(frozen=True)
class NotifierMetrics:
    """Every instrument, in one registry."""

    registry: CollectorRegistry
    alerts: Counter
    notifications: Counter
    failures: Counter
    parked: Gauge
    sink_up: Gauge
    unsettled: Gauge
    latency: Histogram

    @classmethod
    def create(cls) -> NotifierMetrics:
        """A fresh registry with every instrument registered."""
        registry = CollectorRegistry()
        return cls(
            registry=registry,
            alerts=Counter(
                f"{PREFIX}_alerts",
                "Alert records read, by outcome: routed, duplicate (told before), unrouted, undecodable.",
                ["outcome"],
                registry=registry,
            ),
            notifications=Counter(
                f"{PREFIX}_notifications",
                "Notifications by sink and outcome: delivered, parked, redriven (delivered from parking).",
                ["sink", "outcome"],
                registry=registry,
            ),
            failures=Counter(
                f"{PREFIX}_delivery_failures", "Delivery attempts a sink did not take.", ["sink"], registry=registry
            ),
            parked=Gauge(
                f"{PREFIX}_parked",
                "Parked notifications waiting for their sink to return.",
                ["sink"],
                registry=registry,
            ),
            sink_up=Gauge(
                f"{PREFIX}_sink_up", "0 while a sink is down (its work is parked).", ["sink"], registry=registry
            ),
            unsettled=Gauge(
                f"{PREFIX}_unsettled_records",
                "Alert records read but not yet delivered or parked (their offsets are not committed).",
                registry=registry,
            ),
            latency=Histogram(
                f"{PREFIX}_delivery_seconds", "One successful delivery attempt.", ["sink"], registry=registry
            ),
        )
