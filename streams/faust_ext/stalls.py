"""Partitions whose committed offset stays below the log's end: records read but never processed.

faust-streaming can drop a record it has already fetched when the record reaches the stream
while flow control is suspended or a generation is changing (a rebalance): the stream skips
it without acknowledging it, and the consumer's read position has moved on, so the record is
only fetched again after the next rebalance. Seen in the two-worker test after one worker was
killed: a bundle stayed unprocessed, offset committed right below it, for minutes. (The
committed offset only stays below the skipped record because the worker's consumer refuses to
commit past it: streams/faust_ext/commits.py.)

The symptom is observable from outside Faust: on a partition this worker is assigned, the
group's committed offset stays below the partition's end while nothing moves. Such a
partition is sought back to its committed offset, which re-delivers the skipped records;
processing is idempotent (deterministic ids, lattice joins), so a seek that was not needed
only repeats work.

Corrects faust-streaming 0.15.3 (the release streams/faust_ext/faust_version.py requires); the
timer that measures is streams/lag.py, the seek streams/faust_ext/stall_repair.py. Upstream: no
upstream issue found for this case; the closest, faust-streaming issue #216 (records skipped
around a rebalance), was closed by reordering the resume for apps without tables, and this
worker has tables. Why: docs/architecture.md.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

from aiokafka import TopicPartition


@dataclasses.dataclass(frozen=True, slots=True)
class Offsets:
    """Where a consumer group stands on one partition: committed (None: never) and the end."""

    committed: int | None
    end: int
    start: int = 0

    @property
    def position(self) -> int:
        """The offset the group resumes from (never below the log's start)."""
        return max(self.committed if self.committed is not None else self.start, self.start)

    @property
    def behind(self) -> int:
        """Records between the group's position and the end."""
        return max(self.end - self.position, 0)


class StalledPartitions:
    """Finds partitions of this worker that are stalled, not merely behind.

    A partition is stalled when, for `after_s`, its group position has not moved while records
    wait behind it *and* this worker has processed none of its records: a worker that is busy
    with a backlog moves its partitions on, slowly or not, and re-reading them would only add
    to its work. A partition is reported once per position: when reading it again from there
    did not help, reading it again once more would not either (the hang is then elsewhere),
    so it is only reported again once its position has moved.
    """

    def __init__(self, after_s: float) -> None:
        self._after_s = after_s
        # Per partition: (position, processed count, since when) of the last change seen.
        self._since: dict[TopicPartition, tuple[int, int, float]] = {}
        # Per partition: the position it was last reported at.
        self._reported: dict[TopicPartition, int] = {}

    def reset(self) -> None:
        """Forget what was seen (a rebalance moves partitions and restarts positions)."""
        self._since.clear()

    def observe(
        self,
        offsets: Mapping[TopicPartition, Offsets],
        now: float,
        processed: Mapping[TopicPartition, int] | None = None,
    ) -> list[tuple[TopicPartition, int]]:
        """Partitions (and the offset to seek to) that have been stalled for `after_s`.

        `processed` counts, per partition, the records this worker has processed so far (any
        number that grows with each): a partition whose count moved is not stalled.
        """
        counts = processed or {}
        due: list[tuple[TopicPartition, int]] = []
        for tp in list(self._since):
            if tp not in offsets:
                del self._since[tp]
        for tp, where in offsets.items():
            position = where.position
            if self._reported.get(tp, position) != position:
                del self._reported[tp]  # it moved since it was reported
            if where.behind == 0:
                self._since.pop(tp, None)
                continue
            count = counts.get(tp, 0)
            seen = self._since.get(tp)
            if seen is None or seen[0] != position or seen[1] != count:
                self._since[tp] = (position, count, now)
            elif now - seen[2] >= self._after_s and tp not in self._reported:
                due.append((tp, position))
                self._reported[tp] = position
        return due
