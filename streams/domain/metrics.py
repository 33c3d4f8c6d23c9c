"""Metric folding: what a state change contributes to its channel's and campaign's window.

Everything here is mergeable (sums of counts and of fixed-bucket histograms), so partial
aggregates computed on different partitions or batches add up to the same window.
"""

from __future__ import annotations

import bisect
import dataclasses
import hashlib
from collections import Counter
from collections.abc import Callable, Iterable, Mapping

from streams.domain.lattice import MessageState
from streams.domain.status import RANKED, Status

# Upper bounds (ms) of the latency buckets: 100 ms … 24 h, then an overflow bucket.
LATENCY_BOUNDS_MS: tuple[int, ...] = (
    100, 250, 500, 1_000, 2_000, 5_000, 10_000, 30_000, 60_000, 120_000, 300_000,
    600_000, 1_800_000, 3_600_000, 10_800_000, 21_600_000, 43_200_000, 86_400_000,
)  # fmt: skip
BUCKETS = len(LATENCY_BOUNDS_MS) + 1
PERCENTILES = (("p50", 0.50), ("p90", 0.90), ("p99", 0.99))


def bucket_of(latency_ms: int) -> int:
    """The histogram bucket of a latency."""
    return bisect.bisect_left(LATENCY_BOUNDS_MS, max(latency_ms, 0))


def percentiles(histogram: list[int]) -> dict[str, int]:
    """p50/p90/p99 as the upper bound of the bucket holding that rank (overflow: last bound)."""
    total = sum(histogram)
    if total == 0:
        return {}
    result: dict[str, int] = {}
    for name, q in PERCENTILES:
        rank = q * total
        running = 0
        for index, count in enumerate(histogram):
            running += count
            if running >= rank:
                result[name] = LATENCY_BOUNDS_MS[min(index, len(LATENCY_BOUNDS_MS) - 1)]
                break
    return result


@dataclasses.dataclass(frozen=True, slots=True)
class Scope:
    """What a window aggregates: a channel, or one campaign of a channel."""

    provider: str
    channel: str
    campaign: str | None = None

    @property
    def key(self) -> str:
        """Stable text key of the scope."""
        base = f"{self.provider}:{self.channel}"
        return base if self.campaign is None else f"{base}#{self.campaign}"


@dataclasses.dataclass(slots=True)
class WindowAggregate:
    """Mergeable aggregate of one scope's window."""

    transitions: Counter[str] = dataclasses.field(default_factory=Counter)
    failures_by_reason: Counter[str] = dataclasses.field(default_factory=Counter)
    failures_by_code: Counter[str] = dataclasses.field(default_factory=Counter)
    sent_to_delivered: list[int] = dataclasses.field(default_factory=lambda: [0] * BUCKETS)
    delivered_to_read: list[int] = dataclasses.field(default_factory=lambda: [0] * BUCKETS)

    def merge(self, other: WindowAggregate) -> None:
        """Add another partial aggregate of the same window into this one."""
        self.transitions.update(other.transitions)
        self.failures_by_reason.update(other.failures_by_reason)
        self.failures_by_code.update(other.failures_by_code)
        for mine, theirs in (
            (self.sent_to_delivered, other.sent_to_delivered),
            (self.delivered_to_read, other.delivered_to_read),
        ):
            for i, count in enumerate(theirs):
                mine[i] += count

    def to_wire(self) -> dict[str, object]:
        """Plain dict for the internal signals topic."""
        return {
            "transitions": dict(self.transitions),
            "failures_by_reason": dict(self.failures_by_reason),
            "failures_by_code": dict(self.failures_by_code),
            "sent_to_delivered": list(self.sent_to_delivered),
            "delivered_to_read": list(self.delivered_to_read),
        }

    @classmethod
    def from_wire(cls, data: Mapping[str, object]) -> WindowAggregate:
        """Inverse of to_wire."""

        def counter(name: str) -> Counter[str]:
            value = data.get(name) or {}
            assert isinstance(value, Mapping)
            return Counter({str(k): int(v) for k, v in value.items()})

        def histogram(name: str) -> list[int]:
            value = data.get(name) or []
            assert isinstance(value, list)
            padded = [int(v) for v in value] + [0] * (BUCKETS - len(value))
            return padded[:BUCKETS]

        return cls(
            transitions=counter("transitions"),
            failures_by_reason=counter("failures_by_reason"),
            failures_by_code=counter("failures_by_code"),
            sent_to_delivered=histogram("sent_to_delivered"),
            delivered_to_read=histogram("delivered_to_read"),
        )


def window_start(at_ms: int, window_ms: int) -> int:
    """Start of the tumbling window holding `at_ms`."""
    return at_ms - at_ms % window_ms


def contributions(
    before: MessageState | None,
    after: MessageState,
    window_ms: int,
    into: dict[tuple[Scope, int], WindowAggregate] | None = None,
) -> dict[tuple[Scope, int], WindowAggregate]:
    """What one change adds to each (scope, window).

    A transition counts once per message and status, in the window of the status's time when
    first seen. A latency counts once, when both ends of the pair are first known, in the
    window of the later end. With `into`, the contributions are added to those aggregates
    (a batch sums its changes without building one aggregate per change).
    """
    out: dict[tuple[Scope, int], WindowAggregate] = {} if into is None else into
    scopes = [Scope(after.provider, after.channel)]
    if after.campaign is not None:
        scopes.append(Scope(after.provider, after.channel, after.campaign))

    def add(at: int) -> list[WindowAggregate]:
        start = window_start(at, window_ms)
        found = []
        for scope in scopes:
            agg = out.get((scope, start))
            if agg is None:  # not setdefault: building an unused aggregate costs three Counters
                agg = out[(scope, start)] = WindowAggregate()
            found.append(agg)
        return found

    for status in RANKED:
        at = after.time_of(status)
        if at is None or (before is not None and before.time_of(status) is not None):
            continue
        for agg in add(at):
            agg.transitions[status.value] += 1
            if status is Status.FAILED and after.failure is not None:
                agg.failures_by_reason[after.failure.reason.value] += 1
                agg.failures_by_code[after.failure.error_code or "none"] += 1
    _add_latency(before, after, add, start="sent_at", end="effective_delivered_at", histogram="sent_to_delivered")
    _add_latency(before, after, add, start="effective_delivered_at", end="read_at", histogram="delivered_to_read")
    return out


def _add_latency(
    before: MessageState | None,
    after: MessageState,
    add: Callable[[int], list[WindowAggregate]],
    *,
    start: str,
    end: str,
    histogram: str,
) -> None:
    a, b = getattr(after, start), getattr(after, end)
    if a is None or b is None:
        return
    if before is not None and getattr(before, start) is not None and getattr(before, end) is not None:
        return  # already counted when the pair first became complete
    for agg in add(max(a, b)):
        getattr(agg, histogram)[bucket_of(b - a)] += 1


def merge_all(parts: Iterable[dict[tuple[Scope, int], WindowAggregate]]) -> dict[tuple[Scope, int], WindowAggregate]:
    """Sum partial aggregates by (scope, window)."""
    total: dict[tuple[Scope, int], WindowAggregate] = {}
    for part in parts:
        for key, agg in part.items():
            total.setdefault(key, WindowAggregate()).merge(agg)
    return total


#: The MetricWindow fields that used to divide one window's transitions (delivered / sent, read /
#: delivered, failed / (sent + failed)): ratios of activity, not of messages, which exceeded 1
#: (a read whose delivery was counted in an earlier window) and said failed / failed for
#: providers that never report `sent`. They are kept in the schema for its readers and always
#: published null: rates of messages are the send-cohort rates of wa.funnel (funnel.py).
DEPRECATED_RATES = ("delivery_rate", "read_rate", "failure_rate")


def metric_record(
    scope: Scope, start: int, window_ms: int, agg: WindowAggregate, *, revision: int, final: bool
) -> dict[str, object]:
    """The MetricWindow record (schemas/metric_window.avsc); metric_id names the window.

    A window counts activity (`transitions`: messages entering each status in the window), never
    a rate: the deprecated rate fields are null (DEPRECATED_RATES)."""
    t = agg.transitions
    metric_id = hashlib.blake2b(f"{scope.key}|{start}|{window_ms}".encode(), digest_size=12).hexdigest()
    return {
        "metric_id": metric_id,
        "revision": revision,
        "scope": "campaign" if scope.campaign is not None else "channel",
        "provider": scope.provider,
        "channel": scope.channel,
        "campaign": scope.campaign,
        "window_start": start,
        "window_end": start + window_ms,
        "transitions": {status.value: t[status.value] for status in RANKED},
        "failures_by_reason": dict(agg.failures_by_reason),
        "failures_by_code": dict(agg.failures_by_code),
        **dict.fromkeys(DEPRECATED_RATES),
        "sent_to_delivered_ms": percentiles(agg.sent_to_delivered),
        "delivered_to_read_ms": percentiles(agg.delivered_to_read),
        "final": final,
    }
