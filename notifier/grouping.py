"""Notifications: one alert, or a channel's per-message alerts of one interval together.

A group opens with its first alert and closes `interval_ms` later (by the clock the caller
passes in), so a burst becomes one notification whatever its size; a repeated alert id in a
group counts once. Each alert carries an opaque reference (the caller's record offset), so the
caller knows which records a notification settles.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections import Counter
from collections.abc import Hashable, Iterable

from notifier.alerts import Alert


@dataclasses.dataclass(frozen=True, slots=True)
class Notification:
    """What one sink is told at once."""

    sink: str
    key: str
    alerts: tuple[Alert, ...]
    refs: tuple[Hashable, ...] = ()

    @property
    def notification_id(self) -> str:
        """Stable over redelivery: the sink and the ids it carries (sinks may dedup on it)."""
        ids = "|".join(sorted(alert.alert_id for alert in self.alerts))
        return hashlib.blake2b(f"{self.sink}|{ids}".encode(), digest_size=12).hexdigest()

    @property
    def grouped(self) -> bool:
        """Per-message alerts told together."""
        return self.key.startswith("group:")

    @property
    def counts(self) -> dict[str, int]:
        """Alerts per kind, most frequent first."""
        return dict(Counter(alert.kind for alert in self.alerts).most_common())

    def examples(self, limit: int) -> tuple[Alert, ...]:
        """The first alerts by event time (ties by id: the same whatever the arrival order)."""
        return self.alerts[:limit]

    def without(self, delivered: frozenset[str]) -> Notification | None:
        """The same notification less the alerts already delivered; None when nothing is left."""
        left = tuple(alert for alert in self.alerts if alert.alert_id not in delivered)
        if not left:
            return None
        return dataclasses.replace(self, alerts=left)


def ordered(alerts: Iterable[Alert]) -> tuple[Alert, ...]:
    """Distinct alerts by id, in event-time order."""
    unique = {alert.alert_id: alert for alert in alerts}
    return tuple(sorted(unique.values(), key=lambda alert: (alert.occurred_at, alert.alert_id)))


def group_key(alert: Alert) -> str:
    """Per-message alerts group by channel (and provider); every other alert stands alone."""
    if alert.per_message:
        return f"group:{alert.provider or '-'}:{alert.channel or '-'}"
    return f"alert:{alert.alert_id}"


@dataclasses.dataclass(slots=True)
class _OpenGroup:
    opened_at_ms: int
    alerts: dict[str, Alert] = dataclasses.field(default_factory=dict)
    refs: list[Hashable] = dataclasses.field(default_factory=list)


class Grouper:
    """Open groups per (sink, channel); pure: the caller passes the time."""

    def __init__(self, interval_ms: int) -> None:
        self.interval_ms = interval_ms
        self._open: dict[tuple[str, str], _OpenGroup] = {}

    def add(self, sink: str, alert: Alert, ref: Hashable, now_ms: int) -> Notification | None:
        """A notification to send now for an alert that stands alone; None when it joined a group."""
        key = group_key(alert)
        if not alert.per_message:
            return Notification(sink=sink, key=key, alerts=(alert,), refs=(ref,))
        group = self._open.setdefault((sink, key), _OpenGroup(opened_at_ms=now_ms))
        group.alerts.setdefault(alert.alert_id, alert)
        group.refs.append(ref)
        return None

    def due(self, now_ms: int) -> list[Notification]:
        """Groups whose interval has passed, closed and returned."""
        closing = [k for k, g in self._open.items() if now_ms - g.opened_at_ms >= self.interval_ms]
        return [self._close(k) for k in closing]

    def flush(self) -> list[Notification]:
        """Every open group, closed now (shutdown)."""
        return [self._close(k) for k in list(self._open)]

    def next_due_ms(self) -> int | None:
        """When the oldest open group closes."""
        return min((g.opened_at_ms + self.interval_ms for g in self._open.values()), default=None)

    def _close(self, key: tuple[str, str]) -> Notification:
        group = self._open.pop(key)
        return Notification(sink=key[0], key=key[1], alerts=ordered(group.alerts.values()), refs=tuple(group.refs))
