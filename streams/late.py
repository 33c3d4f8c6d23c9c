"""Counting what arrives too late for every bound, on the worker's GET /metrics.

A window partial whose window the channel's watermark passed more than the allowed lateness
ago cannot correct anything any more (its final revision is published): it is dropped, but
counted here, so an operator sees late data instead of losing it silently.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter

LATE_COUNTER = "statusflow_worker_events_too_late"


def late_counter(registry: CollectorRegistry) -> Counter:
    """The counter, in the registry that the worker's GET /metrics exposes."""
    return Counter(
        LATE_COUNTER,
        "Status transitions that arrived after every bound of a stage (e.g. the channel windows' "
        "allowed lateness) and were counted nowhere else.",
        ["stage", "provider"],
        registry=registry,
    )


def count_late(counter: Counter | None, stage: str, provider: str, transitions: int) -> None:
    """Add `transitions` too-late transitions of `provider` at `stage` (None: not exposed)."""
    if counter is not None and transitions > 0:
        counter.labels(stage=stage, provider=provider).inc(transitions)
