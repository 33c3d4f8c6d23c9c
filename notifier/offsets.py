"""Which offset of each partition may be committed: below the oldest record not yet settled.

A record is settled once every notification it went into was delivered or parked; one that
goes nowhere (a duplicate, no route) is settled at once. Committing past an unsettled record
would lose it on a restart.
"""

from __future__ import annotations

from collections.abc import Hashable


class OffsetTracker:
    """Per partition: the next offset to read and the records still waiting, with a count each."""

    def __init__(self) -> None:
        self._next: dict[Hashable, int] = {}
        self._waiting: dict[Hashable, dict[int, int]] = {}
        self._committed: dict[Hashable, int] = {}

    def seen(self, partition: Hashable, offset: int, holds: int) -> None:
        """A record was read that `holds` notifications must settle (0: settled now)."""
        self._next[partition] = max(self._next.get(partition, 0), offset + 1)
        if holds > 0:
            waiting = self._waiting.setdefault(partition, {})
            waiting[offset] = waiting.get(offset, 0) + holds

    def hold(self, partition: Hashable, offset: int) -> None:
        """One more notification must settle the record."""
        waiting = self._waiting.setdefault(partition, {})
        waiting[offset] = waiting.get(offset, 0) + 1

    def settle(self, partition: Hashable, offset: int) -> None:
        """One notification of the record was delivered or parked."""
        waiting = self._waiting.get(partition, {})
        left = waiting.get(offset, 0) - 1
        if left > 0:
            waiting[offset] = left
        else:
            waiting.pop(offset, None)

    def waiting(self) -> int:
        """Records not settled yet."""
        return sum(len(offsets) for offsets in self._waiting.values())

    def committable(self) -> dict[Hashable, int]:
        """Offsets to commit now: those that moved since the last `committed`."""
        out: dict[Hashable, int] = {}
        for partition, next_offset in self._next.items():
            waiting = self._waiting.get(partition)
            offset = min(waiting) if waiting else next_offset
            if offset > self._committed.get(partition, -1):
                out[partition] = offset
        return out

    def committed(self, offsets: dict[Hashable, int]) -> None:
        """The broker took these commits."""
        for partition, offset in offsets.items():
            self._committed[partition] = max(offset, self._committed.get(partition, -1))

    def forget(self, partitions: set[Hashable]) -> None:
        """Partitions this consumer no longer owns."""
        for partition in partitions:
            self._next.pop(partition, None)
            self._waiting.pop(partition, None)
            self._committed.pop(partition, None)
