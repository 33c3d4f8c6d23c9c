"""The pure core of the track agent: fold one event into a message's state, say what changed."""

from __future__ import annotations

import dataclasses
import enum
import hashlib

from streams.domain.events import StatusEvent
from streams.domain.lattice import AT_FIELD, MessageState, initial, merge, same_report, seen_id
from streams.domain.status import RANKED


class Outcome(enum.StrEnum):
    """What an event did to its message."""

    CHANGED = "changed"
    DUPLICATE = "duplicate"  # the same report again: nothing new
    STALE = "stale"  # a distinct report that adds nothing (late, or lower than the state)
    IGNORED = "ignored"  # a side event: annotates, never moves a message


@dataclasses.dataclass(frozen=True, slots=True)
class Tracked:
    """The state after an event, and the change to publish when there is one."""

    state: MessageState
    outcome: Outcome
    change: dict[str, object] | None


def track(state: MessageState | None, event: StatusEvent) -> Tracked:
    """Merge `event` into `state`; a change record only when the reported state changes.

    The returned state may differ from the input even without a change (the seen-id set
    grew): the caller stores it when `state_changed` says so.
    """
    if event.status.is_side_event:
        return Tracked(state if state is not None else initial(event), Outcome.IGNORED, None)
    new = merge(state, event)
    if state is not None and same_report(new, state):
        duplicate = seen_id(event) in state.seen or state.time_of(event.status) == event.occurred_at
        return Tracked(new, Outcome.DUPLICATE if duplicate else Outcome.STALE, None)
    return Tracked(new, Outcome.CHANGED, change_record(state, new, event))


def state_changed(before: MessageState | None, tracked: Tracked) -> bool:
    """Whether the table must be written (a change, or only bookkeeping grew)."""
    return tracked.outcome is not Outcome.IGNORED and (before is None or tracked.state != before)


def change_record(before: MessageState | None, after: MessageState, event: StatusEvent) -> dict[str, object]:
    """The StatusChange record (schemas/status_change.avsc) with a deterministic id."""
    status = after.status
    assert status is not None  # merge of a ranked event always yields a ranked status
    times = _times(after)
    fingerprint = "|".join(f"{k}={v}" for k, v in sorted(times.items()))
    digest = hashlib.blake2b(f"{after.message_key}|{fingerprint}".encode(), digest_size=12)
    previous = before.status.value if before and before.status else None
    return _record(
        after, times, change_id=digest.hexdigest(), previous=previous, status=status.value, event_id=event.event_id
    )


def expired_record(state: MessageState, at: int) -> dict[str, object]:
    """The StatusChange of an unfinished message leaving the table: status `expired`."""
    times = _times(state)
    digest = hashlib.blake2b(f"{state.message_key}|expired|{sorted(times.items())}".encode(), digest_size=12)
    previous = state.status.value if state.status else None
    return _record(
        state, times, change_id=digest.hexdigest(), previous=previous, status="expired", event_id=f"retention:{at}"
    )


def _times(state: MessageState) -> dict[str, int | None]:
    return {AT_FIELD[s]: state.time_of(s) for s in RANKED}


def _record(
    state: MessageState,
    times: dict[str, int | None],
    *,
    change_id: str,
    previous: str | None,
    status: str,
    event_id: str,
) -> dict[str, object]:
    failure = state.failure
    return {
        "change_id": change_id,
        "message_key": state.message_key,
        "provider": state.provider,
        "channel": state.channel,
        "message_id": state.message_id,
        "campaign": state.campaign,
        "recipient": state.recipient,
        "correlation_id": state.correlation_id,
        "previous_status": previous,
        "status": status,
        "event_id": event_id,
        **times,
        "delivered_implied": state.delivered_implied,
        "failure_reason": failure.reason.value if failure else None,
        "error_code": failure.error_code if failure else None,
        "error_title": failure.error_title if failure else None,
        "anomaly": state.anomaly,
    }


def moved_record(before: MessageState | None, after: MessageState, alias_key: str) -> dict[str, object] | None:
    """The StatusChange of a state joined from what was tracked under an alias of the message
    (streams/domain/aliases.py), None when the join reports nothing new."""
    if after.status is None or (before is not None and same_report(before, after)):
        return None
    times = _times(after)
    fingerprint = "|".join(f"{k}={v}" for k, v in sorted(times.items()))
    digest = hashlib.blake2b(f"{after.message_key}|{fingerprint}".encode(), digest_size=12)
    previous = before.status.value if before and before.status else None
    return _record(
        after,
        times,
        change_id=digest.hexdigest(),
        previous=previous,
        status=after.status.value,
        event_id=f"alias:{alias_key}",
    )
