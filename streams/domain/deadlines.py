"""A set of keys, each with one deadline, that yields the keys whose deadline has passed.

The heap keeps stale entries (a key whose deadline moved) until they surface or until they
outnumber the live ones, when it is rebuilt from the live deadlines: memory stays within
about twice one entry per key, however often each key's deadline moves.
"""

from __future__ import annotations

import heapq
from typing import Protocol

#: Below this many entries the heap is never rebuilt (a rebuild's cost is not worth it).
_MIN_REBUILD = 1024


class DeadlineSet(Protocol):
    """What an index needs of its deadlines (in memory here, on disk in streams/disk_deadlines.py)."""

    @property
    def entries(self) -> int: ...

    def set(self, key: bytes, deadline: int) -> None: ...

    def discard(self, key: bytes) -> None: ...

    def due(self, now: int) -> list[bytes]: ...

    def close(self) -> None: ...


class Deadlines:
    """At most one deadline per key; `due(now)` pops every key whose deadline is <= now."""

    def __init__(self) -> None:
        self._deadline: dict[bytes, int] = {}
        self._heap: list[tuple[int, bytes]] = []

    def __len__(self) -> int:
        """Keys with a deadline."""
        return len(self._deadline)

    def __contains__(self, key: object) -> bool:
        return key in self._deadline

    @property
    def entries(self) -> int:
        """Heap entries, stale ones included (what the memory bound is about)."""
        return len(self._heap)

    def get(self, key: bytes) -> int | None:
        """The deadline of `key`, if it has one."""
        return self._deadline.get(key)

    def set(self, key: bytes, deadline: int) -> None:
        """Give `key` this deadline (replacing any other)."""
        if self._deadline.get(key) == deadline:
            return
        self._deadline[key] = deadline
        heapq.heappush(self._heap, (deadline, key))
        if len(self._heap) > max(_MIN_REBUILD, 2 * len(self._deadline)):
            self._rebuild()

    def discard(self, key: bytes) -> None:
        """Forget `key` (its heap entry goes stale)."""
        if self._deadline.pop(key, None) is not None and len(self._heap) > max(_MIN_REBUILD, 2 * len(self._deadline)):
            self._rebuild()

    def due(self, now: int) -> list[bytes]:
        """Keys whose deadline is <= `now`, earliest first; they leave the set."""
        due: list[bytes] = []
        heap, deadline = self._heap, self._deadline
        while heap and heap[0][0] <= now:
            at, key = heapq.heappop(heap)
            if deadline.get(key) == at:
                del deadline[key]
                due.append(key)
        return due

    def close(self) -> None:
        """Nothing to release: the deadlines are in memory."""

    def _rebuild(self) -> None:
        self._heap = [(at, key) for key, at in self._deadline.items()]
        heapq.heapify(self._heap)
