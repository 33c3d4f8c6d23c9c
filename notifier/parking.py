"""Parked notifications as records of the parking topic (schemas/parked_notification.avsc).

Records are Avro single-object encoded like every statusflow topic. Notifiers before that wrote
JSON; a deployment upgrading may still hold such records, parked while a sink was down, so
decoding tells the two apart by the first bytes (Avro's `C3 01` magic, JSON's `{`) and reads both.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import orjson

from notifier.alerts import Alert
from notifier.grouping import Notification
from schemas.codec import MAGIC, SchemaError, codec

SCHEMA = "parked_notification"


def record(notification: Notification, parked_at_ms: int, reason: str) -> dict[str, Any]:
    """The ParkedNotification record of a notification its sink did not take."""
    return {
        "sink": notification.sink,
        "key": notification.key,
        "parked_at": parked_at_ms,
        "reason": reason,
        "alerts": [alert.to_dict() for alert in notification.alerts],
    }


def encode(notification: Notification, parked_at_ms: int, reason: str) -> bytes:
    """The parking record's value."""
    return codec(SCHEMA).encode(record(notification, parked_at_ms, reason))


def decode(value: bytes) -> Notification:
    """The notification in a parking record, Avro or the JSON of earlier notifiers; ValueError when
    the record is neither."""
    if value[: len(MAGIC)] == MAGIC:
        try:
            data = codec(SCHEMA).decode(value)
        except SchemaError as exc:
            raise ValueError(f"not a parked notification: {exc}") from exc
    else:
        try:
            data = orjson.loads(value)
        except orjson.JSONDecodeError as exc:
            raise ValueError(f"not a parked notification (neither Avro nor JSON): {exc}") from exc
    return _notification(data)


_ALERT_FIELDS = frozenset(field.name for field in dataclasses.fields(Alert))


def _notification(data: Any) -> Notification:
    if not isinstance(data, Mapping):
        raise ValueError("not a parked notification: not an object")  # noqa: TRY004 - decode raises ValueError
    try:
        sink, key, alerts = str(data["sink"]), str(data["key"]), data["alerts"]
        parsed = tuple(_alert(alert) for alert in alerts)
    except (KeyError, TypeError, AttributeError) as exc:
        raise ValueError(f"not a parked notification: {exc!r}") from exc
    if not sink or not parsed:
        raise ValueError("not a parked notification: no sink or no alerts")
    return Notification(sink=sink, key=key, alerts=parsed)


def _alert(fields: Mapping[str, Any]) -> Alert:
    # Fields this notifier does not know (a newer writer's) are left out rather than refused.
    return Alert(**{name: value for name, value in fields.items() if name in _ALERT_FIELDS})
