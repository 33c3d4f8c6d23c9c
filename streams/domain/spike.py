"""The failure-rate spike rule: failures among the outcomes the provider reported.

A message's outcome is delivered (a read implies it) or failed. The rate used to be
failed / (sent + failed), so a channel whose provider never reports `sent` (Vonage's
`submitted` is queued; WPP) measured failed / failed: 20 failures among 980 deliveries were a
100 % spike. Here the denominator is every outcome reported in the horizon, whichever progress
states the provider has, so it is never made of failures alone while anything is delivered.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Iterable

from streams.domain.metrics import WindowAggregate


class Phase(enum.StrEnum):
    """What a spike evaluation concludes (the Alert record's `state`)."""

    FIRING = "firing"
    RESOLVED = "resolved"


@dataclasses.dataclass(frozen=True, slots=True)
class SpikeMeasure:
    """Failures and outcomes (failed + delivered) reported in the spike horizon."""

    failed: int = 0
    outcomes: int = 0

    @property
    def rate(self) -> float:
        """Failed share of the outcomes; 0 when none was reported (nothing to judge)."""
        return self.failed / self.outcomes if self.outcomes else 0.0


def measure(aggregates: Iterable[WindowAggregate]) -> SpikeMeasure:
    """The outcomes of these windows (transitions count once per message and status)."""
    failed = delivered = 0
    for agg in aggregates:
        t = agg.transitions
        failed += t["failed"]
        # A read without a delivered report (Meta skips it when both happen together) is a
        # delivery too; the larger of the two counts is a lower bound of the window's deliveries.
        delivered += max(t["delivered"], t["read"])
    return SpikeMeasure(failed=failed, outcomes=failed + delivered)


def evaluate(firing: bool, measured: SpikeMeasure, *, threshold: float, min_volume: int) -> Phase | None:
    """FIRING when a spike starts, RESOLVED when a firing one clears, None when nothing changes.

    A spike needs `min_volume` outcomes (a handful of failures on a quiet channel is no spike);
    it clears once the rate is under the threshold again, including when the horizon empties.
    """
    if not firing and measured.outcomes >= min_volume and measured.rate >= threshold:
        return Phase.FIRING
    if firing and measured.rate < threshold:
        return Phase.RESOLVED
    return None
