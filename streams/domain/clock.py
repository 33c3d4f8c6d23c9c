"""Event time against receipt time: how far a provider's clock may run ahead of ours.

Watermarks follow event time, which providers stamp with their own clocks. A report stamped
ahead of its receipt (a skewed clock, a bug, a forged body) would drag a watermark into the
future, and everything that follows would look late. So an event time moves a watermark no
further than the receipt time of its webhook plus a small allowance for clock skew; the event
itself keeps its time (it still counts in the window of its own time).
"""

from __future__ import annotations

#: Clock skew tolerated between a provider and us before an event time stops moving the
#: channel stage's watermark. Well under the windows' allowed lateness (5 min by default), so
#: an event stamped far ahead can never make the reports received with it late.
MAX_AHEAD_MS = 60_000


def bounded(event_at: int, received_at: int | None, max_ahead_ms: int = MAX_AHEAD_MS) -> int:
    """How far `event_at` may move a watermark, given the receipt time of its webhook (None:
    unknown, no bound)."""
    if received_at is None:
        return event_at
    return min(event_at, received_at + max_ahead_ms)
