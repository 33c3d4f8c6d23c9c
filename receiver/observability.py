"""Prometheus metrics of the receiver, in a registry of its own per app."""

from __future__ import annotations

import dataclasses

from prometheus_client import CollectorRegistry, Counter, Histogram


@dataclasses.dataclass(frozen=True)
class ReceiverMetrics:
    """The receiver's instruments."""

    registry: CollectorRegistry
    requests: Counter
    latency: Histogram

    @classmethod
    def create(cls) -> ReceiverMetrics:
        """A fresh registry with every instrument registered."""
        registry = CollectorRegistry()
        return cls(
            registry=registry,
            requests=Counter(
                "statusflow_receiver_requests",
                "Webhook requests by provider, channel and HTTP status.",
                ["provider", "channel", "code"],
                registry=registry,
            ),
            latency=Histogram(
                "statusflow_receiver_request_seconds",
                "Time from request to response, publish included.",
                ["provider"],
                registry=registry,
                buckets=(0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10),
            ),
        )
