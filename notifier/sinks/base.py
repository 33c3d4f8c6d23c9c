"""What every sink is."""

from __future__ import annotations

from typing import Protocol

from notifier.grouping import Notification
from notifier.settings import SinkName


class SinkError(Exception):
    """The sink did not take the notification (down, refused, timed out)."""


class Sink(Protocol):
    """Delivers one notification or raises SinkError."""

    name: SinkName

    async def deliver(self, notification: Notification) -> None:
        """Deliver, or raise SinkError."""
        ...

    async def close(self) -> None:
        """Release connections."""
        ...
