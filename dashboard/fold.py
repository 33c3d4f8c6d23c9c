"""What the dashboard shows, folded from the public topics by pure functions.

The inputs are decoded records of wa.funnel (CohortFunnel), wa.metrics (MetricWindow),
wa.alerts (Alert) and wa.webhooks.dlq (DeadLetter). Every fold is idempotent on the records'
deterministic ids (funnel key + revision, metric_id + revision, alert_id, request_id + reason),
because at-least-once delivery may repeat them. Nothing here does I/O.

Rates are send-cohort rates only (wa.funnel: delivered / attempted, read / delivered,
failed / attempted), which cannot leave [0, 1]. Metric windows count the transitions that
happened in each window: that is shown as activity, never divided into a rate.
"""

from __future__ import annotations

import dataclasses
from collections import deque
from collections.abc import Iterable, Mapping
from typing import Any

from streams.domain.funnel import Cohort, counts_of_record, summary
from streams.domain.metrics import Scope

# The canonical statuses a MetricWindow counts, in lattice order (schemas/metric_window.avsc).
STATUSES = ("queued", "created", "sent", "failed", "delivered", "read")
LATENCY_PAIRS = ("sent_to_delivered_ms", "delivered_to_read_ms")
ALL = "all"


@dataclasses.dataclass(frozen=True, slots=True)
class Window:
    """The latest revision of one metric window (one scope, one tumbling window)."""

    metric_id: str
    revision: int
    scope: str  # "channel" or "campaign"
    provider: str
    channel: str
    campaign: str | None
    window_start: int
    window_end: int
    transitions: Mapping[str, int]
    latency: Mapping[str, Mapping[str, int]]
    final: bool

    @property
    def scope_key(self) -> str:
        """`provider:channel`, or `provider:channel#campaign` for a campaign window."""
        return Scope(self.provider, self.channel, self.campaign).key


@dataclasses.dataclass(slots=True)
class DashboardState:
    """Everything folded so far; bounded by `windows_per_scope`, `alerts_kept` and `dead_letters_kept`."""

    windows_per_scope: int = 1440
    alerts_kept: int = 50
    dead_letters_kept: int = 20
    windows: dict[str, dict[str, Window]] = dataclasses.field(default_factory=dict)  # scope key -> metric_id -> w
    alerts: dict[str, dict[str, Any]] = dataclasses.field(default_factory=dict)  # alert_id -> latest record
    alert_order: deque[str] = dataclasses.field(default_factory=deque)
    alerts_seen: int = 0
    opened: dict[str, dict[str, Any]] = dataclasses.field(default_factory=dict)  # condition -> latest opening
    closed: dict[str, int] = dataclasses.field(default_factory=dict)  # condition -> latest closing time
    dead_letter_ids: set[tuple[str, str]] = dataclasses.field(default_factory=set)
    dead_letters_by_channel: dict[str, int] = dataclasses.field(default_factory=dict)
    latest_dead_letters: deque[dict[str, Any]] = dataclasses.field(default_factory=deque)
    cohorts: dict[str, dict[str, Any]] = dataclasses.field(default_factory=dict)  # cohort key -> latest record
    cohorts_kept: int = 20_000
    records: dict[str, int] = dataclasses.field(
        default_factory=lambda: {"funnel": 0, "metrics": 0, "alerts": 0, "dead_letters": 0}
    )


def window_from_record(record: Mapping[str, Any]) -> Window:
    """A MetricWindow record (as schemas.codec decodes it) as a Window."""
    return Window(
        metric_id=str(record["metric_id"]),
        revision=int(record.get("revision", 0)),
        scope=str(record.get("scope", "channel")),
        provider=str(record["provider"]),
        channel=str(record["channel"]),
        campaign=record.get("campaign"),
        window_start=_millis(record["window_start"]),
        window_end=_millis(record["window_end"]),
        transitions={status: int(record["transitions"].get(status, 0)) for status in STATUSES},
        latency={pair: {k: int(v) for k, v in (record.get(pair) or {}).items()} for pair in LATENCY_PAIRS},
        final=bool(record.get("final", False)),
    )


def _millis(value: Any) -> int:
    """Epoch ms from what fastavro returns for timestamp-millis (a datetime) or a plain int."""
    if isinstance(value, int):
        return value
    return int(value.timestamp() * 1000)


def apply_metric(state: DashboardState, record: Mapping[str, Any]) -> None:
    """Keep the highest revision of each window; the oldest windows of a scope beyond the bound go."""
    state.records["metrics"] += 1
    window = window_from_record(record)
    scope = state.windows.setdefault(window.scope_key, {})
    current = scope.get(window.metric_id)
    if current is not None and current.revision >= window.revision:
        return  # a repeat or an older revision: the window already holds as much
    scope[window.metric_id] = window
    if len(scope) > state.windows_per_scope:
        oldest = min(scope.values(), key=lambda w: w.window_start)
        del scope[oldest.metric_id]


def apply_funnel(state: DashboardState, record: Mapping[str, Any]) -> None:
    """Keep the highest revision of each cohort (an upsert: the last record holds the whole
    counts); beyond the bound the oldest cohorts go."""
    state.records["funnel"] += 1
    start = _millis(record["cohort_start"])
    key = Cohort(str(record["provider"]), str(record["channel"]), record.get("campaign"), start).key
    current = state.cohorts.get(key)
    if current is not None and current["revision"] >= int(record["revision"]):
        return
    state.cohorts[key] = {**record, "cohort_start": start, "cohort_end": _millis(record["cohort_end"])}
    if len(state.cohorts) > state.cohorts_kept:
        oldest = min(state.cohorts, key=lambda k: state.cohorts[k]["cohort_start"])
        del state.cohorts[oldest]


# What a cohort row shows: every message in attempted, then in one outcome or pending.
COHORT_COUNTS = ("attempted", "delivered", "read", "failed", "expired", "pending")
RATES = ("delivery_rate", "read_rate", "failure_rate")


def _cohort_row(records: list[dict[str, Any]]) -> tuple[dict[str, int], dict[str, float | None]]:
    total: dict[str, int] = {}
    for record in records:
        for name, count in counts_of_record(record).items():
            total[name] = total.get(name, 0) + count
    summed = summary(total)
    return {name: int(summed[name]) for name in COHORT_COUNTS}, {name: summed[name] for name in RATES}


def funnel(state: DashboardState) -> dict[str, list[dict[str, Any]]]:
    """Send-cohort funnels summed over the cohorts held, per channel and per campaign, with rates."""
    scopes: dict[str, list[dict[str, Any]]] = {}
    for record in state.cohorts.values():
        scope = Scope(record["provider"], record["channel"], record.get("campaign")).key
        scopes.setdefault(scope, []).append(record)
    rows: dict[str, list[dict[str, Any]]] = {"channels": [], "campaigns": []}
    for key in sorted(scopes):
        records = scopes[key]
        first = records[0]
        counts, rates_ = _cohort_row(records)
        rows["campaigns" if first.get("campaign") is not None else "channels"].append(
            {
                "key": key,
                "provider": first["provider"],
                "channel": first["channel"],
                "campaign": first.get("campaign"),
                "counts": counts,
                "rates": rates_,
                "cohorts": len(records),
                "from": min(r["cohort_start"] for r in records),
                "to": max(r["cohort_end"] for r in records),
            }
        )
    return rows


def cohort_series(state: DashboardState, points: int) -> dict[str, list[dict[str, Any]]]:
    """Cohort rates per cohort start for every channel and all channels together (last `points`)."""
    per_start: dict[str, dict[int, list[dict[str, Any]]]] = {}
    for record in state.cohorts.values():
        if record.get("campaign") is not None:
            continue  # campaign cohorts repeat what their channel's cohort counts
        key = f"{record['provider']}:{record['channel']}"
        for scope in (key, ALL):
            per_start.setdefault(scope, {}).setdefault(record["cohort_start"], []).append(record)
    out: dict[str, list[dict[str, Any]]] = {}
    for scope, by_start in per_start.items():
        out[scope] = []
        for start in sorted(by_start)[-points:]:
            counts, rates_ = _cohort_row(by_start[start])
            out[scope].append({"cohort_start": start, "counts": counts, **rates_})
    return out


def apply_alert(state: DashboardState, record: Mapping[str, Any]) -> None:
    """Remember the latest alerts (by id) and which conditions are firing (by alert key)."""
    state.records["alerts"] += 1
    alert_id = str(record["alert_id"])
    alert: dict[str, Any] = {
        "alert_id": alert_id,
        "alert_key": str(record["alert_key"]),
        "kind": str(record["kind"]),
        "severity": str(record["severity"]),
        "state": str(record["state"]),
        "provider": record.get("provider"),
        "channel": record.get("channel"),
        "campaign": record.get("campaign"),
        "message_key": record.get("message_key"),
        "error_code": record.get("error_code"),
        "detail": str(record["detail"]),
        "occurred_at": _millis(record["occurred_at"]),
        "count": int(record.get("count", 1)),
    }
    if alert_id not in state.alerts:
        state.alerts_seen += 1
        state.alert_order.append(alert_id)
        while len(state.alert_order) > state.alerts_kept:
            state.alerts.pop(state.alert_order.popleft(), None)
    state.alerts[alert_id] = alert
    _track_firing(state, alert)


# Conditions an alert opens and the alert kind that closes each one (streams/domain/channel.py):
# a logout closes with channel_resolved, a spike with its own `resolved` record.
_CLOSED_BY = {"channel_logout": "channel_resolved", "failure_rate_spike": "failure_rate_spike"}
_CLOSES = {closer: opener for opener, closer in _CLOSED_BY.items()}


def _track_firing(state: DashboardState, alert: dict[str, Any]) -> None:
    """Order-independent: opening and closing alerts have different keys, so they may sit in
    different partitions; a condition fires while its latest opening is newer than its latest closing."""
    kind, condition = alert["kind"], f"{alert['provider']}:{alert['channel']}"
    if kind in _CLOSED_BY and alert["state"] == "firing":
        key = f"{kind}:{condition}"
        current = state.opened.get(key)
        if current is None or current["occurred_at"] <= alert["occurred_at"]:
            state.opened[key] = alert
    elif kind in _CLOSES and (kind == "channel_resolved" or alert["state"] == "resolved"):
        key = f"{_CLOSES[kind]}:{condition}"
        state.closed[key] = max(state.closed.get(key, alert["occurred_at"]), alert["occurred_at"])


def firing(state: DashboardState) -> list[dict[str, Any]]:
    """Conditions (logouts, failure-rate spikes) opened and not closed since, newest first."""
    still = [a for key, a in state.opened.items() if a["occurred_at"] > state.closed.get(key, -1)]
    return sorted(still, key=lambda a: a["occurred_at"], reverse=True)


def apply_dead_letter(state: DashboardState, record: Mapping[str, Any]) -> None:
    """Count distinct dead letters (request id + reason) per channel; remember the latest."""
    state.records["dead_letters"] += 1
    ident = (str(record["request_id"]), str(record["reason"]))
    if ident in state.dead_letter_ids:
        return
    state.dead_letter_ids.add(ident)
    key = f"{record['provider']}:{record['channel']}"
    state.dead_letters_by_channel[key] = state.dead_letters_by_channel.get(key, 0) + 1
    state.latest_dead_letters.append(
        {
            "request_id": ident[0],
            "reason": ident[1],
            "provider": str(record["provider"]),
            "channel": str(record["channel"]),
            "failed_at": _millis(record["failed_at"]),
        }
    )
    while len(state.latest_dead_letters) > state.dead_letters_kept:
        state.latest_dead_letters.popleft()


def _sum(windows: Iterable[Window]) -> dict[str, int]:
    total = dict.fromkeys(STATUSES, 0)
    for window in windows:
        for status in STATUSES:
            total[status] += window.transitions[status]
    return total


def activity(state: DashboardState) -> dict[str, list[dict[str, Any]]]:
    """Transitions into each status, summed over the held windows, per channel and per campaign.

    Activity, not a funnel: a message delivered in one window and read in the next counts in
    both, so ratios of these counts are no rates (they may exceed 100 %); none is computed."""
    rows: dict[str, list[dict[str, Any]]] = {"channels": [], "campaigns": []}
    for key in sorted(state.windows):
        windows = list(state.windows[key].values())
        if not windows:
            continue
        first = windows[0]
        counts = _sum(windows)
        rows["campaigns" if first.campaign is not None else "channels"].append(
            {
                "key": key,
                "provider": first.provider,
                "channel": first.channel,
                "campaign": first.campaign,
                "counts": counts,
                "windows": len(windows),
                "from": min(w.window_start for w in windows),
                "to": max(w.window_end for w in windows),
            }
        )
    return rows


def series(state: DashboardState, points: int) -> dict[str, list[dict[str, Any]]]:
    """Activity per window start for every channel and for all channels together (last `points` windows).

    Campaign windows are left out of "all": they repeat counts their channel windows hold.
    """
    per_start: dict[str, dict[int, list[Window]]] = {}
    for key, windows in state.windows.items():
        for window in windows.values():
            if window.campaign is not None:
                continue
            per_start.setdefault(key, {}).setdefault(window.window_start, []).append(window)
            per_start.setdefault(ALL, {}).setdefault(window.window_start, []).append(window)
    out: dict[str, list[dict[str, Any]]] = {}
    for key, by_start in per_start.items():
        out[key] = [{"window_start": start, "counts": _sum(by_start[start])} for start in sorted(by_start)[-points:]]
    return out


def latency(state: DashboardState) -> list[dict[str, Any]]:
    """Per channel: the percentiles of its latest window that measured any.

    A MetricWindow carries p50/p90/p99 only, not its histogram, so percentiles of several
    windows or channels cannot be combined honestly: each row is one window's.
    """
    rows = []
    for key in sorted(state.windows):
        measured = [
            w for w in state.windows[key].values() if w.campaign is None and any(w.latency[p] for p in LATENCY_PAIRS)
        ]
        if not measured:
            continue
        latest = max(measured, key=lambda w: w.window_start)
        rows.append(
            {"key": key, "window_start": latest.window_start, **{p: dict(latest.latency[p]) for p in LATENCY_PAIRS}}
        )
    return rows


def alerts_view(state: DashboardState) -> dict[str, Any]:
    """The latest alerts first, the conditions still firing, and how many distinct alerts were seen."""
    latest = sorted(state.alerts.values(), key=lambda a: (a["occurred_at"], a["alert_id"]), reverse=True)
    by_kind: dict[str, int] = {}
    for alert in state.alerts.values():
        by_kind[alert["kind"]] = by_kind.get(alert["kind"], 0) + 1
    return {
        "seen": state.alerts_seen,
        "latest": latest,
        "firing": firing(state),
        "by_kind": dict(sorted(by_kind.items())),
    }


def dead_letters_view(state: DashboardState) -> dict[str, Any]:
    """How many distinct dead letters, per channel, and the latest ones."""
    return {
        "count": len(state.dead_letter_ids),
        "by_channel": dict(sorted(state.dead_letters_by_channel.items())),
        "latest": list(reversed(state.latest_dead_letters)),
    }


def snapshot(
    state: DashboardState,
    *,
    lag: Mapping[str, Any],
    receiver: Mapping[str, Any],
    now_ms: int,
    series_points: int = 60,
) -> dict[str, Any]:
    """The JSON document the page renders (GET /api/snapshot, each SSE event)."""
    return {
        "generated_at": now_ms,
        "funnel": funnel(state),
        "cohort_series": cohort_series(state, series_points),
        "activity": activity(state),
        "series": series(state, series_points),
        "latency": latency(state),
        "alerts": alerts_view(state),
        "dead_letters": dead_letters_view(state),
        "lag": dict(lag),
        "receiver": dict(receiver),
        "records": dict(state.records),
    }
