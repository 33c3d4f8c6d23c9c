"""Which alert ids each sink was already told: a repeated alert, a redelivered record or a
restart never notifies twice. The set is rebuilt at start from the ledger topic (ledger.py)."""

from __future__ import annotations

from collections.abc import Iterable

from notifier.grouping import Notification


def ledger_key(sink: str, alert_id: str) -> str:
    """The record key on the ledger topic (compacted: one record per key is kept)."""
    return f"{sink}|{alert_id}"


def parse_ledger_key(key: str) -> tuple[str, str] | None:
    """(sink, alert id) of a ledger key; None for a key that is not one."""
    sink, sep, alert_id = key.partition("|")
    return (sink, alert_id) if sep and sink and alert_id else None


class Delivered:
    """Alert ids told per sink."""

    def __init__(self) -> None:
        self._ids: dict[str, set[str]] = {}

    def add(self, sink: str, alert_ids: Iterable[str]) -> None:
        """These alerts reached the sink."""
        self._ids.setdefault(sink, set()).update(alert_ids)

    def knows(self, sink: str, alert_id: str) -> bool:
        """The sink was told this alert."""
        return alert_id in self._ids.get(sink, ())

    def fresh(self, notification: Notification) -> Notification | None:
        """The notification less what its sink was told already; None when nothing is new."""
        return notification.without(frozenset(self._ids.get(notification.sink, ())))

    def __len__(self) -> int:
        return sum(len(ids) for ids in self._ids.values())
