"""The join lattice: a message's state is the join of all its events.

`merge` is commutative, associative and idempotent, so the state is the same whatever the
order or the number of repeats in which events arrive. Each ranked status keeps the earliest
time seen for it; the status is the highest rank seen; the failure detail comes from the
earliest failure (ties broken by event id) so that it too is order-free. Optional texts
(campaign, recipient, correlation id) keep the smallest value seen, and the bounded set of
seen event ids keeps the smallest ids, for the same reason: a join must not depend on order.
"""

from __future__ import annotations

import dataclasses
import operator

from streams.domain.events import StatusEvent, message_key
from streams.domain.status import RANKED, FailureReason, Status

# The state field of each ranked status, computed once (this is on the hot path).
AT_FIELD: dict[Status, str] = {status: f"{status.value}_at" for status in RANKED}
_FIELDS_HIGHEST_FIRST = tuple((status, AT_FIELD[status]) for status in reversed(RANKED))
_AT_FIELDS = tuple(AT_FIELD.values())


@dataclasses.dataclass(frozen=True, slots=True)
class Failure:
    """What the earliest failure of a message said."""

    at: int
    event_id: str
    reason: FailureReason
    error_code: str | None
    error_title: str | None


@dataclasses.dataclass(frozen=True, slots=True)
class MessageState:
    """The joined state of one message. Times are epoch milliseconds; None = not seen."""

    provider: str
    channel: str
    message_id: str
    campaign: str | None = None
    queued_at: int | None = None
    created_at: int | None = None
    sent_at: int | None = None
    failed_at: int | None = None
    delivered_at: int | None = None
    read_at: int | None = None
    failure: Failure | None = None
    recipient: str | None = None
    correlation_id: str | None = None
    # Short prefixes of seen event ids: exact duplicate detection for the common case while
    # keeping the table value small. Not part of what a StatusChange reports.
    seen: frozenset[str] = frozenset()

    def reported(self) -> MessageState:
        """The state without bookkeeping: what changes are detected and published on."""
        return dataclasses.replace(self, seen=frozenset()) if self.seen else self

    @property
    def message_key(self) -> str:
        """`provider:channel:message_id` (streams/domain/events.py)."""
        return message_key(self.provider, self.channel, self.message_id)

    @property
    def status(self) -> Status | None:
        """The highest-ranked status seen, None before any ranked event."""
        for status, field in _FIELDS_HIGHEST_FIRST:
            if getattr(self, field) is not None:
                return status
        return None

    def time_of(self, status: Status) -> int | None:
        """The earliest time seen for a ranked status."""
        value: int | None = getattr(self, AT_FIELD[status])
        return value

    @property
    def last_event_at(self) -> int:
        """The latest time of any ranked status seen (0 before any)."""
        return max((t for _, f in _FIELDS_HIGHEST_FIRST if (t := getattr(self, f)) is not None), default=0)

    @property
    def delivered_implied(self) -> bool:
        """Read without a delivery report: Meta skips `delivered` when both happen together."""
        return self.delivered_at is None and self.read_at is not None

    @property
    def effective_delivered_at(self) -> int | None:
        """delivered_at, or read_at standing in for it."""
        return self.delivered_at if self.delivered_at is not None else self.read_at

    @property
    def anomaly(self) -> bool:
        """A failure reported after the message was delivered or read."""
        delivered = self.effective_delivered_at
        return self.failed_at is not None and delivered is not None and self.failed_at > delivered


# Everything a StatusChange reports: all fields but the seen-id bookkeeping. One C-level
# attrgetter builds the tuple to compare (the hot path of track compares states per event).
_REPORTED = operator.attrgetter(*(f.name for f in dataclasses.fields(MessageState) if f.name != "seen"))


def same_report(a: MessageState, b: MessageState) -> bool:
    """Whether two states report the same thing (`a.reported() == b.reported()`, without copies)."""
    return bool(_REPORTED(a) == _REPORTED(b))


def _earliest(current: int | None, new: int) -> int:
    return new if current is None or new < current else current


def _min_optional(a: str | None, b: str | None) -> str | None:
    if a is None:
        return b
    if b is None:
        return a
    return min(a, b)


def _failure_order(f: Failure) -> tuple[int, str, str, str, str]:
    # A total order: two reports with the same time and id but different details must still
    # pick the same winner in any order.
    return (f.at, f.event_id, f.reason.value, f.error_code or "", f.error_title or "")


def _earlier_failure(current: Failure | None, new: Failure) -> Failure:
    if current is None or _failure_order(new) < _failure_order(current):
        return new
    return current


SEEN_LIMIT = 4
SEEN_PREFIX = 12


def seen_id(event: StatusEvent) -> str:
    """The prefix of an event id kept in the seen set."""
    return event.event_id[:SEEN_PREFIX]


def _bounded(ids: frozenset[str]) -> frozenset[str]:
    # Keeping the smallest ids (not the latest) keeps the bounded set order-independent.
    return ids if len(ids) <= SEEN_LIMIT else frozenset(sorted(ids)[:SEEN_LIMIT])


def initial(event: StatusEvent) -> MessageState:
    """The bottom state of the message an event belongs to."""
    return MessageState(provider=event.provider, channel=event.channel, message_id=event.message_id)


def merge(state: MessageState | None, event: StatusEvent) -> MessageState:
    """Join one event into a state (None = message not seen yet). Side events change nothing."""
    base = state if state is not None else initial(event)
    if event.status.is_side_event:
        return base
    times = {field: getattr(base, field) for field in _AT_FIELDS}
    field = AT_FIELD[event.status]
    times[field] = _earliest(times[field], event.occurred_at)
    failure = base.failure
    if event.status is Status.FAILED:
        reported = Failure(
            at=event.occurred_at,
            event_id=event.event_id,
            reason=event.failure_reason or FailureReason.ERROR,
            error_code=event.error_code,
            error_title=event.error_title,
        )
        failure = _earlier_failure(failure, reported)
    # A direct construction, not dataclasses.replace: a third of the cost, on the hot path.
    return MessageState(
        provider=base.provider,
        channel=base.channel,
        message_id=base.message_id,
        campaign=_min_optional(base.campaign, event.campaign),
        failure=failure,
        recipient=_min_optional(base.recipient, event.recipient),
        correlation_id=_min_optional(base.correlation_id, event.correlation_id),
        seen=_bounded(base.seen | {seen_id(event)}),
        **times,
    )


def join(a: MessageState, b: MessageState) -> MessageState:
    """Join two states of the same message (used by replay and the property tests)."""
    changes: dict[str, object] = {}
    for status in RANKED:
        field = f"{status.value}_at"
        va, vb = getattr(a, field), getattr(b, field)
        changes[field] = vb if va is None else (va if vb is None else min(va, vb))
    for name in ("campaign", "recipient", "correlation_id"):
        changes[name] = _min_optional(getattr(a, name), getattr(b, name))
    changes["seen"] = _bounded(a.seen | b.seen)
    if a.failure is None or b.failure is None:
        changes["failure"] = a.failure or b.failure
    else:
        changes["failure"] = _earlier_failure(a.failure, b.failure)
    return dataclasses.replace(a, **changes)  # type: ignore[arg-type]
