"""Prometheus metrics of the receiver, in a registry of its own per app."""

from __future__ import annotations

import dataclasses

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10)


@dataclasses.dataclass(frozen=True)
class ReceiverMetrics:
    """The receiver's instruments."""

    registry: CollectorRegistry
    requests: Counter
    tenant_requests: Counter
    latency: Histogram
    publish_latency: Histogram
    broker_up: Gauge
    spooled: Counter
    sniffed: Counter
    drained: Counter
    spool_records: Gauge
    spool_bytes: Gauge
    spool_oldest_age: Gauge
    spool_commit_seconds: Histogram
    spool_commit_records: Histogram

    @classmethod
    def create(cls) -> ReceiverMetrics:
        """A fresh registry with every instrument registered."""
        registry = CollectorRegistry()
        prefix = "statusflow_receiver"
        return cls(
            registry=registry,
            requests=Counter(
                f"{prefix}_requests",
                "Webhook requests by provider, channel and HTTP status.",
                ["provider", "channel", "code"],
                registry=registry,
            ),
            # Tenant names come from the channels file only (schemas.access.TenantLabeller):
            # bounded by the configuration, `none` for channels without a tenant and unknown paths.
            tenant_requests=Counter(
                f"{prefix}_tenant_requests",
                "Webhook requests by the tenant of their channel and HTTP status.",
                ["tenant", "code"],
                registry=registry,
            ),
            latency=Histogram(
                f"{prefix}_request_seconds",
                "Time from request to response, publish included.",
                ["provider"],
                registry=registry,
                buckets=LATENCY_BUCKETS,
            ),
            publish_latency=Histogram(
                f"{prefix}_publish_seconds",
                "Time to make one envelope durable, by where it became durable (kafka or spool).",
                ["destination"],
                registry=registry,
                buckets=LATENCY_BUCKETS,
            ),
            broker_up=Gauge(f"{prefix}_broker_up", "1 while Kafka acknowledges, 0 while spooling.", registry=registry),
            spooled=Counter(f"{prefix}_spooled", "Envelopes made durable in the spool.", registry=registry),
            sniffed=Counter(
                f"{prefix}_sniffed",
                "Webhooks accepted whose content type was sniffed from the body (none or a generic one was sent).",
                ["provider", "content_type"],
                registry=registry,
            ),
            drained=Counter(f"{prefix}_drained", "Spooled records Kafka acknowledged.", registry=registry),
            spool_records=Gauge(f"{prefix}_spool_records", "Records waiting in the spool.", registry=registry),
            spool_bytes=Gauge(f"{prefix}_spool_bytes", "Bytes of spool files on disk.", registry=registry),
            spool_oldest_age=Gauge(
                f"{prefix}_spool_oldest_age_seconds",
                "Age of the oldest record waiting in the spool.",
                registry=registry,
            ),
            spool_commit_seconds=Histogram(
                f"{prefix}_spool_commit_seconds",
                "Write + fsync of one group commit.",
                registry=registry,
                buckets=LATENCY_BUCKETS,
            ),
            spool_commit_records=Histogram(
                f"{prefix}_spool_commit_records",
                "Records made durable by one fsync.",
                registry=registry,
                buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512),
            ),
        )
