"""What every sink is."""

from __future__ import annotations

from typing import Protocol

from notifier.grouping import Notification


class SinkError(Exception):
    """The sink did not take the notification (down, refused, timed out)."""


class Sink(Protocol):
    """Delivers one notification or raises SinkError."""

    @property
    def name(self) -> str:
        """The sink's name: routes, the ledger, parking and metrics know it by it."""
        ...

    async def deliver(self, notification: Notification) -> None:
        """Deliver, or raise SinkError."""
        ...

    async def close(self) -> None:
        """Release connections."""
        ...
