"""The receiver's request counters, from its Prometheus text, turned into rates (pure)."""

from __future__ import annotations

import dataclasses
from collections import deque
from collections.abc import Callable, Mapping
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

# receiver/observability.py: Counter "statusflow_receiver_requests" {provider, channel, code}
REQUESTS_FAMILY = "statusflow_receiver_requests"

Labels = tuple[str, str, str]  # provider, channel, code


def request_counts(text: str) -> dict[Labels, float]:
    """The `_total` samples of the receiver's request counter by (provider, channel, code)."""
    counts: dict[Labels, float] = {}
    for family in text_string_to_metric_families(text):
        if family.name != REQUESTS_FAMILY:
            continue
        for sample in family.samples:
            if sample.name == f"{REQUESTS_FAMILY}_total":
                labels = (sample.labels["provider"], sample.labels["channel"], sample.labels["code"])
                counts[labels] = counts.get(labels, 0.0) + sample.value
    return counts


@dataclasses.dataclass(slots=True)
class Scrape:
    """The counters of every receiver at one time (seconds); None for a receiver that did not answer."""

    at: float
    counts: dict[str, dict[Labels, float] | None]


def _rate(before: Mapping[Labels, float], after: Mapping[Labels, float], seconds: float) -> dict[Labels, float]:
    """Per-second increase; a counter that went down restarted from zero (Prometheus' rule)."""
    out = {}
    for labels, value in after.items():
        previous = before.get(labels, 0.0)
        increase = value - previous if value >= previous else value
        out[labels] = increase / seconds
    return out


@dataclasses.dataclass(slots=True)
class RequestHistory:
    """The last scrapes of the receivers, for current rates and a short history."""

    keep: int = 60
    scrapes: deque[Scrape] = dataclasses.field(default_factory=deque)

    def add(self, scrape: Scrape) -> None:
        """Append a scrape, dropping the oldest beyond `keep`."""
        self.scrapes.append(scrape)
        while len(self.scrapes) > self.keep:
            self.scrapes.popleft()

    def view(self, keep: Callable[[str, str], bool] | None = None) -> dict[str, Any]:
        """Totals and per-second rates (over the last interval) by code and provider, plus history;
        with `keep`, of the (provider, channel) pairs it keeps only (a tenant's page)."""
        if not self.scrapes:
            return {"targets": [], "total": 0, "rate": None, "by_code": {}, "by_provider": {}, "history": []}
        last = self.scrapes[-1]
        totals: dict[Labels, float] = {}
        for counts in last.counts.values():
            for labels, value in (counts or {}).items():
                if keep is None or keep(labels[0], labels[1]):
                    totals[labels] = totals.get(labels, 0.0) + value
        history = [
            {"at": after.at, "rate": sum(self._rates(before, after, keep).values())}
            for before, after in zip(list(self.scrapes)[:-1], list(self.scrapes)[1:], strict=True)
        ]
        current = self._rates(self.scrapes[-2], last, keep) if len(self.scrapes) > 1 else {}
        by_code: dict[str, dict[str, float]] = {}
        by_provider: dict[str, dict[str, float]] = {}
        for (provider, _channel, code), value in totals.items():
            for table, name in ((by_code, code), (by_provider, provider)):
                row = table.setdefault(name, {"total": 0.0, "rate": 0.0})
                row["total"] += value
        for (provider, _channel, code), value in current.items():
            by_code[code]["rate"] += value
            by_provider[provider]["rate"] += value
        return {
            "targets": [{"url": url, "up": counts is not None} for url, counts in last.counts.items()],
            "total": sum(totals.values()),
            "rate": sum(current.values()) if len(self.scrapes) > 1 else None,
            "by_code": dict(sorted(by_code.items())),
            "by_provider": dict(sorted(by_provider.items())),
            "history": history,
        }

    @staticmethod
    def _rates(before: Scrape, after: Scrape, keep: Callable[[str, str], bool] | None = None) -> dict[Labels, float]:
        seconds = after.at - before.at
        if seconds <= 0:
            return {}
        out: dict[Labels, float] = {}
        for url, counts in after.counts.items():
            previous = before.counts.get(url)
            if counts is None or previous is None:
                continue  # a receiver that was away: no rate over that interval
            for labels, value in _rate(previous, counts, seconds).items():
                if keep is None or keep(labels[0], labels[1]):
                    out[labels] = out.get(labels, 0.0) + value
        return out
