"""Parked notifications as records of the parking topic (JSON: they never leave statusflow)."""

from __future__ import annotations

from typing import Any, cast, get_args

import orjson

from notifier.alerts import Alert
from notifier.grouping import Notification
from notifier.settings import SinkName


def encode(notification: Notification, parked_at_ms: int, reason: str) -> bytes:
    """The parking record of a notification its sink did not take."""
    return orjson.dumps(
        {
            "sink": notification.sink,
            "key": notification.key,
            "parked_at": parked_at_ms,
            "reason": reason,
            "alerts": [alert.to_dict() for alert in notification.alerts],
        }
    )


def decode(value: bytes) -> Notification:
    """The notification in a parking record; ValueError when the record is not one."""
    try:
        data: dict[str, Any] = orjson.loads(value)
        sink = data["sink"]
        if sink not in get_args(SinkName):
            raise ValueError(f"unknown sink {sink!r}")
        alerts = tuple(Alert(**alert) for alert in data["alerts"])
        if not alerts:
            raise ValueError("no alerts")
        return Notification(sink=cast(SinkName, sink), key=str(data["key"]), alerts=alerts)
    except (orjson.JSONDecodeError, KeyError, TypeError) as exc:
        raise ValueError(f"not a parked notification: {exc}") from exc
