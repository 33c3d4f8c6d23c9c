"""Which alert ids each sink was already told: a repeated alert, a redelivered record or a
restart never notifies twice. The set is rebuilt at start from the ledger topic (ledger.py),
whose records (schemas/delivered_alert.avsc) are encoded and read back here."""

from __future__ import annotations

from collections.abc import Iterable

from notifier.grouping import Notification
from schemas.codec import MAGIC, SchemaError, codec

SCHEMA = "delivered_alert"


def ledger_key(sink: str, alert_id: str) -> str:
    """The record key on the ledger topic (compacted: one record per key is kept)."""
    return f"{sink}|{alert_id}"


def parse_ledger_key(key: str) -> tuple[str, str] | None:
    """(sink, alert id) of a ledger key; None for a key that is not one."""
    sink, sep, alert_id = key.partition("|")
    return (sink, alert_id) if sep and sink and alert_id else None


def ledger_records(notification: Notification, delivered_at_ms: int) -> list[tuple[bytes, bytes]]:
    """(key, value) of the ledger records saying the notification's sink took its alerts."""
    encode = codec(SCHEMA).encode
    return [
        (
            ledger_key(notification.sink, alert.alert_id).encode(),
            encode(
                {
                    "sink": notification.sink,
                    "alert_id": alert.alert_id,
                    "notification_id": notification.notification_id,
                    "delivered_at": delivered_at_ms,
                }
            ),
        )
        for alert in notification.alerts
    ]


def ledger_entry(key: bytes | None, value: bytes | None) -> tuple[str, str] | None:
    """(sink, alert id) a ledger record says was delivered; None for a record that says nothing.

    An Avro value names both. Notifiers before it wrote the value `1` and said it all in the key,
    which is still read, so a ledger written before an upgrade keeps deduplicating; the key is
    also the fallback for an Avro value this notifier cannot decode (a newer schema version).
    """
    if value is not None and value[: len(MAGIC)] == MAGIC:
        try:
            record = codec(SCHEMA).decode(value)
        except SchemaError:
            pass
        else:
            return (record["sink"], record["alert_id"]) if record["sink"] and record["alert_id"] else None
    if key is None:
        return None
    try:
        return parse_ledger_key(key.decode())
    except UnicodeDecodeError:
        return None


class Delivered:
    """Alert ids told per sink."""

    def __init__(self) -> None:
        self._ids: dict[str, set[str]] = {}

    def add(self, sink: str, alert_ids: Iterable[str]) -> None:
        """These alerts reached the sink."""
        self._ids.setdefault(sink, set()).update(alert_ids)

    def forget(self, sink: str, alert_id: str) -> None:
        """A tombstone on the ledger: the pair is no longer known as delivered."""
        self._ids.get(sink, set()).discard(alert_id)

    def fold(self, key: bytes | None, value: bytes | None) -> bool:
        """Read one ledger record, in topic order; False when it is not a ledger record."""
        entry = ledger_entry(key, value)
        if entry is None:
            return False
        if value is None:
            self.forget(*entry)
        else:
            self.add(entry[0], [entry[1]])
        return True

    def knows(self, sink: str, alert_id: str) -> bool:
        """The sink was told this alert."""
        return alert_id in self._ids.get(sink, ())

    def fresh(self, notification: Notification) -> Notification | None:
        """The notification less what its sink was told already; None when nothing is new."""
        return notification.without(frozenset(self._ids.get(notification.sink, ())))

    def __len__(self) -> int:
        return sum(len(ids) for ids in self._ids.values())
