"""When a send cohort closes: its row leaves the cohort table, its last wa.funnel record stays.

A cohort changes while its messages change, and a message changes while it is in the state
table: an unfinished one stays there `retention_unfinished` after its last event (a finished one
less), so a cohort whose messages all had their first event before its end can no longer change
once the stream's time is past its end by that retention. A day's margin more (or the retention
itself, if shorter) covers what the retention does not bound tightly: a message's later pending
stages (queued, then sent) move its expiry a little past its first event, and a message that
expires unfinished reaches its cohort as a delta (pending → expired) only once the track stage
has retired it, on its own partition's clock. The stream's time here is the channel stage's
watermark, which every event moves no further than a minute past its webhook's receipt
(streams/domain/clock.py): a report stamped ahead cannot close cohorts early.

Past that bound the cohort is **closed**: its row is deleted from the cohort table (the table no
longer grows with every hour of every campaign forever) and nothing is written to wa.funnel,
whose compaction keeps the cohort's last record: the final one, what analytics reads. A delta
that still arrives for a closed cohort (a report older than every bound, or a message that
outlived the margin) is not folded: folded into a new, empty row it would publish a record with
only that delta's counts, overwriting the cohort's true last record. It is counted instead (the
worker's statusflow_worker_events_too_late_total, stage funnel_cohorts), as late window
partials are.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping

from streams.domain.funnel import cohort_start

#: The margin past the retention of unfinished messages (at most; the retention if shorter).
MARGIN_MS = 86_400_000

#: A funnel delta of a signals record: (campaign, cohort start, signed counts).
Delta = tuple[str | None, int, Mapping[str, int]]


@dataclasses.dataclass(frozen=True, slots=True)
class CohortRetention:
    """How long a cohort stays open, by the channel stage's watermark."""

    cohort_ms: int
    unfinished_ms: int

    @property
    def margin_ms(self) -> int:
        """What is kept past the retention: a day, or the retention if it is shorter."""
        return min(self.unfinished_ms, MARGIN_MS)

    def closes_at(self, start: int) -> int:
        """The watermark from which the cohort starting at `start` is closed."""
        return start + self.cohort_ms + self.unfinished_ms + self.margin_ms

    def open_from(self, watermark: int) -> int:
        """The start of the earliest cohort still open at `watermark`: every cohort (aligned on
        the cohort length) that starts before it is closed."""
        return cohort_start(watermark - self.cohort_ms - self.unfinished_ms - self.margin_ms, self.cohort_ms) + (
            self.cohort_ms
        )

    def closed(self, start: int, watermark: int) -> bool:
        """Whether the cohort starting at `start` is closed at `watermark`."""
        return watermark >= self.closes_at(start)

    def split(self, deltas: Iterable[Delta], watermark: int) -> tuple[list[Delta], list[Delta]]:
        """A signals record's funnel deltas `(campaign, cohort start, counts)`: those of open
        cohorts (to fold) and those of closed ones (to count as too late)."""
        kept: list[Delta] = []
        late: list[Delta] = []
        for item in deltas:
            (late if self.closed(item[1], watermark) else kept).append(item)
        return kept, late
