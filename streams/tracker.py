"""The pure core of the track agent: fold one event into a message's state, say what changed."""

from __future__ import annotations

import dataclasses
import enum
import hashlib

from streams.domain.events import StatusEvent
from streams.domain.lattice import MessageState, initial, merge, seen_id
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
    if state is not None and new.reported() == state.reported():
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
    times = {f"{s.value}_at": after.time_of(s) for s in RANKED}
    fingerprint = "|".join(f"{k}={v}" for k, v in sorted(times.items()))
    digest = hashlib.blake2b(f"{after.message_key}|{fingerprint}".encode(), digest_size=12)
    failure = after.failure
    return {
        "change_id": digest.hexdigest(),
        "message_key": after.message_key,
        "provider": after.provider,
        "channel": after.channel,
        "message_id": after.message_id,
        "campaign": after.campaign,
        "recipient": after.recipient,
        "correlation_id": after.correlation_id,
        "previous_status": before.status.value if before and before.status else None,
        "status": status.value,
        "event_id": event.event_id,
        **times,
        "delivered_implied": after.delivered_implied,
        "failure_reason": failure.reason.value if failure else None,
        "error_code": failure.error_code if failure else None,
        "error_title": failure.error_title if failure else None,
        "anomaly": after.anomaly,
    }


def expired_record(state: MessageState, at: int) -> dict[str, object]:
    """The StatusChange of an unfinished message leaving the table: status `expired`."""
    times = {f"{s.value}_at": state.time_of(s) for s in RANKED}
    digest = hashlib.blake2b(f"{state.message_key}|expired|{sorted(times.items())}".encode(), digest_size=12)
    failure = state.failure
    return {
        "change_id": digest.hexdigest(),
        "message_key": state.message_key,
        "provider": state.provider,
        "channel": state.channel,
        "message_id": state.message_id,
        "campaign": state.campaign,
        "recipient": state.recipient,
        "correlation_id": state.correlation_id,
        "previous_status": state.status.value if state.status else None,
        "status": "expired",
        "event_id": f"retention:{at}",
        **times,
        "delivered_implied": state.delivered_implied,
        "failure_reason": failure.reason.value if failure else None,
        "error_code": failure.error_code if failure else None,
        "error_title": failure.error_title if failure else None,
        "anomaly": state.anomaly,
    }
