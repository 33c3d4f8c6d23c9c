"""A notification as Alertmanager v2 alerts (POST /api/v2/alerts).

Alertmanager identifies an alert by its labels, so the labels are the condition (kind,
provider, channel, campaign, tenant and the firing severity), never the message: a group of
per-message alerts becomes one Alertmanager alert per label set, its annotations the counts and
examples. A resolution is sent with the firing labels and endsAt = now.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any

from notifier.alerts import FIRING_SEVERITY, Alert
from notifier.grouping import Notification, ordered


def iso(ms: int) -> str:
    """RFC 3339 in UTC, as Alertmanager wants it."""
    return dt.datetime.fromtimestamp(ms / 1000, tz=dt.UTC).isoformat().replace("+00:00", "Z")


def labels(alert: Alert) -> dict[str, str]:
    """The identity of the condition; empty labels are left out (Alertmanager drops them anyway)."""
    kind = alert.condition
    severity = FIRING_SEVERITY.get(kind, alert.severity) if alert.resolves else alert.severity
    found = {
        "alertname": f"statusflow_{kind}",
        "kind": kind,
        "severity": severity,
        "provider": alert.provider,
        "channel": alert.channel,
        "tenant": alert.tenant,
        "campaign": alert.campaign,
    }
    return {name: value for name, value in found.items() if value}


def _annotations(alerts: tuple[Alert, ...], examples: int) -> dict[str, str]:
    first = alerts[0]
    out = {"summary": first.detail, "description": first.detail, "alert_ids": ",".join(a.alert_id for a in alerts)}
    if len(alerts) > 1 or first.per_message:
        out["count"] = str(len(alerts))
        out["examples"] = "\n".join(alert.detail for alert in alerts[:examples])
        out["summary"] = f"{len(alerts)} {first.kind} alert{'s' if len(alerts) != 1 else ''}: {first.detail}"
    if first.error_code:
        out["error_code"] = first.error_code
    if first.value is not None:
        out["value"] = f"{first.value:.4g}"
    if first.threshold is not None:
        out["threshold"] = f"{first.threshold:.4g}"
    return out


def _by_labels(alerts: Iterable[Alert]) -> dict[tuple[tuple[str, str], ...], list[Alert]]:
    out: dict[tuple[tuple[str, str], ...], list[Alert]] = {}
    for alert in alerts:
        out.setdefault(tuple(sorted(labels(alert).items())), []).append(alert)
    return out


def postable_alerts(
    notification: Notification, now_ms: int, *, message_ttl_ms: int, condition_ttl_ms: int, examples: int
) -> list[dict[str, Any]]:
    """The body of POST /api/v2/alerts for one notification."""
    out: list[dict[str, Any]] = []
    for label_items, alerts in _by_labels(notification.alerts).items():
        group = ordered(alerts)
        starts = min(alert.occurred_at for alert in group)
        last = group[-1]
        if last.resolves:
            starts = min(starts, now_ms)
            ends = max(now_ms, starts)
        elif last.per_message:
            # Nothing resolves a failed message: it stays visible for a while, then expires.
            ends = max(now_ms, starts) + message_ttl_ms
        else:
            # A condition stays active until its resolution arrives (or the TTL, if it never does).
            ends = max(now_ms, starts) + condition_ttl_ms
        out.append(
            {
                "labels": dict(label_items),
                "annotations": _annotations(group, examples),
                "startsAt": iso(starts),
                "endsAt": iso(ends),
            }
        )
    return out
