"""Wire formats of the domain objects: Avro records for topics, compact arrays for the table.

The table value is an orjson array rather than Avro or a dict: it is the smallest thing that
round-trips a MessageState, which keeps the store and its changelog small.
"""

from __future__ import annotations

import dataclasses
from typing import Any
from urllib.parse import quote

import orjson

from schemas.codec import codec
from streams.domain.events import MessageKey, StatusEvent, parse_legacy_message_key, parse_message_key
from streams.domain.lattice import Failure, MessageState
from streams.domain.status import FailureReason, Status

# 2: the table key is `provider:channel:message_id`. A value of version 1 was written under a
# `provider:message_id` key, before channels were part of a message's identity: it is still
# read (its channel is in the value), but such a table is rebuilt by replay (docs/runbook.md).
_STATE_VERSION = 2
LEGACY_STATE_VERSION = 1
_EVENT_FIELDS = tuple(f.name for f in dataclasses.fields(StatusEvent))


def event_to_record(event: StatusEvent) -> dict[str, Any]:
    """StatusEvent → the StatusEvent Avro record (a dict)."""
    # Field by field: dataclasses.asdict deep-copies every value and was the largest single
    # cost of the normalize stage in the profile (bench/results/profile-worker.txt).
    record = {field: getattr(event, field) for field in _EVENT_FIELDS}
    record["event_id"] = event.event_id
    record["message_key"] = event.message_key
    record["status"] = event.status.value
    record["failure_reason"] = event.failure_reason.value if event.failure_reason else None
    return record


def event_from_record(record: dict[str, Any]) -> StatusEvent:
    """The StatusEvent Avro record → StatusEvent (ids are derived, not read)."""
    fields = dict(record)
    fields.pop("event_id")
    fields.pop("message_key")
    fields["status"] = Status(fields["status"])
    reason = fields["failure_reason"]
    fields["failure_reason"] = FailureReason(reason) if reason else None
    return StatusEvent(**fields)


def event_to_avro(event: StatusEvent) -> bytes:
    """StatusEvent → single-object Avro bytes."""
    return codec("status_event").encode(event_to_record(event))


def event_from_avro(data: bytes) -> StatusEvent:
    """Single-object Avro bytes → StatusEvent (raises SchemaError)."""
    return event_from_record(codec("status_event").decode(data))


def bundle_from_avro(data: bytes) -> tuple[list[StatusEvent], list[bytes]]:
    """A StatusEventBundle → its events and the keys to re-check for retention (raises SchemaError)."""
    record = codec("status_event_bundle").decode(data)
    return [event_from_record(r) for r in record["events"]], [k.encode() for k in record["retire"]]


@dataclasses.dataclass(frozen=True, slots=True)
class Bundle:
    """Everything a StatusEventBundle asks of the track stage (schemas/status_event_bundle.avsc)."""

    events: list[StatusEvent]
    retire: list[bytes]
    aliases: list[dict[str, Any]]
    merges: list[dict[str, Any]]
    notes: list[dict[str, Any]]


def bundle_parts_from_avro(data: bytes) -> Bundle:
    """A StatusEventBundle, every part of it (raises SchemaError)."""
    record = codec("status_event_bundle").decode(data)
    return Bundle(
        events=[event_from_record(r) for r in record["events"]],
        retire=[k.encode() for k in record["retire"]],
        aliases=record["aliases"],
        merges=record["merges"],
        notes=record["notes"],
    )


def state_to_bytes(state: MessageState) -> bytes:
    """MessageState → compact table value.

    Provider and message id are left out: the table key (`provider:channel:message_id`) has them.
    """
    f = state.failure
    return orjson.dumps(
        [
            _STATE_VERSION,
            state.channel,
            state.campaign,
            state.queued_at,
            state.created_at,
            state.sent_at,
            state.failed_at,
            state.delivered_at,
            state.read_at,
            [f.at, f.event_id, f.reason.value, f.error_code, f.error_title] if f else None,
            state.recipient,
            state.correlation_id,
            sorted(state.seen),
        ]
    )


def state_from_bytes(key: bytes, data: bytes) -> MessageState:
    """Table key and compact value → MessageState."""
    (version, channel, campaign, q, c, s, f_at, d, r, fail, recipient, correlation_id, seen) = orjson.loads(data)
    parts = parse_legacy_message_key(key, channel) if version == LEGACY_STATE_VERSION else parse_message_key(key)
    provider, message_id = parts.provider, parts.message_id
    failure = (
        Failure(at=fail[0], event_id=fail[1], reason=FailureReason(fail[2]), error_code=fail[3], error_title=fail[4])
        if fail
        else None
    )
    return MessageState(
        provider=provider,
        channel=channel,
        message_id=message_id,
        campaign=campaign,
        queued_at=q,
        created_at=c,
        sent_at=s,
        failed_at=f_at,
        delivered_at=d,
        read_at=r,
        failure=failure,
        recipient=recipient,
        correlation_id=correlation_id,
        seen=frozenset(seen),
    )


def is_legacy_state(data: bytes) -> bool:
    """Whether a table value was written under a key of the form before channels
    (`provider:message_id`): a table of an app id that predates them (docs/runbook.md)."""
    return data[:3] == b"[1,"


def message_path(key: MessageKey, suffix: str = "") -> str:
    """The query API's path of a message (`suffix`: "" or "/history"), each part
    percent-encoded: message ids may hold `/` or `?`."""
    return "/messages/" + "/".join(quote(part, safe="") for part in key) + suffix


def state_view(state: MessageState) -> dict[str, Any]:
    """The JSON answer of GET /messages/{provider}/{channel}/{message_id}."""
    failure = state.failure
    status = state.status
    return {
        "message_key": state.message_key,
        "provider": state.provider,
        "channel": state.channel,
        "message_id": state.message_id,
        "campaign": state.campaign,
        "recipient": state.recipient,
        "correlation_id": state.correlation_id,
        "status": status.value if status else None,
        "timestamps": {
            "queued_at": state.queued_at,
            "created_at": state.created_at,
            "sent_at": state.sent_at,
            "failed_at": state.failed_at,
            "delivered_at": state.effective_delivered_at,
            "read_at": state.read_at,
        },
        "delivered_implied": state.delivered_implied,
        "anomaly": state.anomaly,
        "failure": None
        if failure is None
        else {
            "reason": failure.reason.value,
            "error_code": failure.error_code,
            "error_title": failure.error_title,
            "at": failure.at,
        },
    }
