"""When a message leaves the table: finished ones after a retention, unfinished after a longer one.

Time here is the stream's own: a partition's watermark is the latest event time it has tracked,
so a replay retires exactly what the live run retired and old test data is not swept away by
the wall clock. A per-partition index holds one expiry per message (streams/domain/deadlines.py)
and finds the due messages without scanning the table; the check at expiry re-reads the state.
"""

from __future__ import annotations

import dataclasses

from streams.domain.deadlines import Deadlines, DeadlineSet
from streams.domain.lattice import MessageState
from streams.domain.status import Status

FINISHED = frozenset({Status.READ, Status.FAILED})
#: How far a provider's event time may run ahead of the receipt time of its webhook and still
#: move the watermark. Provider clocks are not ours: one report dated years ahead (a bug, a
#: forged body) would otherwise make every message of its partition due at once.
MAX_AHEAD_MS = 24 * 3600 * 1000


@dataclasses.dataclass(frozen=True, slots=True)
class Retention:
    """How long messages stay in the table after their last event (event time)."""

    finished_ms: int
    unfinished_ms: int

    def expiry(self, state: MessageState) -> int:
        """When `state` may leave the table."""
        return state.last_event_at + (self.finished_ms if state.status in FINISHED else self.unfinished_ms)


class RetentionIndex:
    """The expiry of each message of one partition (in memory: one entry per message in the table)."""

    def __init__(self, retention: Retention, expiries: DeadlineSet | None = None) -> None:
        self._retention = retention
        # In memory by default; on disk beside a RocksDB table (streams/disk_deadlines.py).
        self.expiries: DeadlineSet = Deadlines() if expiries is None else expiries
        self.watermark = 0

    @property
    def entries(self) -> int:
        """Entries held, stale ones included (bounded by about twice the messages)."""
        return self.expiries.entries

    def note(self, key: bytes, state: MessageState, received_at: int | None = None) -> None:
        """Index a message whose state was just written; `received_at` (the receipt time of the
        webhooks that wrote it, or the clock when the table is re-read) bounds how far its event
        time may move the watermark."""
        latest = state.last_event_at
        if received_at is not None:
            latest = min(latest, received_at + MAX_AHEAD_MS)
        self.watermark = max(self.watermark, latest)
        self.expiries.set(key, self._retention.expiry(state))

    def schedule(self, key: bytes, deadline: int) -> None:
        """Index a key that has no state with a deadline of its own (an alias, or the history of a
        message known only from dead letters: streams/message_ids.py); when it is due, the caller
        re-checks what the key holds and schedules again what is not due yet."""
        self.expiries.set(key, deadline)

    def forget(self, key: bytes) -> None:
        """The message left the table."""
        self.expiries.discard(key)

    def due(self) -> list[bytes]:
        """Keys whose indexed expiry the watermark has passed; the caller re-checks their state."""
        return self.expiries.due(self.watermark)
