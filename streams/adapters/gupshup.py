"""Gupshup WhatsApp message events: v2 (`type: message-event`) and v3 (Meta's Cloud API shape).

v2 changes the meaning of `payload.id` during a message's life: Gupshup's own id for `enqueued`
and `failed`, WhatsApp's id for `sent`/`delivered`/`read`/`deleted`, which then carry Gupshup's id
in `gsId`. Every event is keyed by the Gupshup id (`gsId`, else `id` of enqueued/failed) so all
events of one message share one message key and one partition; the WhatsApp id goes to
`correlation_id`. Events arriving more than a week after sending lack `gsId` (Gupshup docs): they
can only be keyed by the WhatsApp id, and `correlation_id` lets the tracker join them.

v3 is Meta's `entry[].changes[].value.statuses[]` with `gs_id` on each status and millisecond
timestamps; it is parsed by the Meta adapter's functions and re-keyed by `gs_id` the same way.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from schemas.envelope import RawWebhook
from streams.adapters import error_codes, meta
from streams.adapters._fields import event_time, load_json_object, optional_str, require_str
from streams.adapters.base import Batch, ParseResult, UnparseableWebhook, new_event
from streams.domain.events import StatusEvent
from streams.domain.status import FailureReason, Status

# v2 `payload.type` words (Gupshup "Message events"); `deleted` is a side event (docs/architecture.md).
STATUS_MAP: dict[str, Status] = {
    "enqueued": Status.QUEUED,
    "sent": Status.SENT,
    "delivered": Status.DELIVERED,
    "read": Status.READ,
    "failed": Status.FAILED,
    "deleted": Status.DELETED,
}

# v3 uses Meta's words plus Gupshup's own `enqueued`.
V3_STATUS_MAP: dict[str, Status] = {**meta.STATUS_MAP, "enqueued": Status.QUEUED}

# The statuses whose v2 `payload.id` is Gupshup's id; the others carry WhatsApp's id.
_GUPSHUP_ID_STATUSES = frozenset({"enqueued", "failed"})

# Gupshup's own failure codes (error_codes/gupshup.toml: 1002 "Number Does Not Exist On
# WhatsApp", 1006-1008 not opted in, 1012 opted out, 4001 rate limited…). Meta's codes, which
# Gupshup passes through, are recognised by meta.failure_reason.
ERROR_CODES = error_codes.table("gupshup")


class GupshupAdapter:
    """Parses v2 message events and v3 Cloud API statuses; other event types are ignored."""

    name = "gupshup"

    def parse(self, raw: RawWebhook) -> ParseResult:
        """The one v2 event, or every v3 status, of one POST."""
        doc = load_json_object(raw.body)
        if "entry" in doc:
            return _parse_v3(raw, doc)
        kind = doc.get("type")
        if not isinstance(kind, str) or not kind:
            msg = "body has neither entry[] (v3) nor a type (v2)"
            raise UnparseableWebhook(msg)
        if kind != "message-event":
            # Inbound `message`, `user-event`, `billing-event`…: not statuses of our messages.
            return ParseResult(ignored=1, ignored_reasons=(f"{kind} (not a message status)",))
        return ParseResult(events=(_v2_event(raw, doc),))


def failure_reason(code: str | None) -> FailureReason:
    """Gupshup's codes first (its meaning wins where numbers collide), then Meta's codes."""
    return ERROR_CODES.reason(code) or meta.failure_reason(code)


def _v2_event(raw: RawWebhook, doc: dict[str, Any]) -> StatusEvent:
    payload = doc.get("payload")
    if not isinstance(payload, dict):
        msg = "payload must be an object"
        raise UnparseableWebhook(msg)
    word = require_str(payload, "type", "payload")
    status = STATUS_MAP.get(word.lower())
    if status is None:
        msg = f"payload.type {word!r} is not a known Gupshup message event"
        raise UnparseableWebhook(msg)
    detail = payload.get("payload", {})
    if not isinstance(detail, dict):
        msg = "payload.payload must be an object"
        raise UnparseableWebhook(msg)
    provider_id = require_str(payload, "id", "payload")
    gupshup_id: str | None
    if word.lower() in _GUPSHUP_ID_STATUSES:
        gupshup_id = optional_str(payload, "gsId") or provider_id
        whatsapp_id = optional_str(detail, "whatsappMessageId")
    else:
        gupshup_id = optional_str(payload, "gsId")
        whatsapp_id = provider_id
    message_id = gupshup_id or whatsapp_id or provider_id
    # `ts` (epoch seconds) is when WhatsApp reported the status; enqueued and failed have none,
    # and the envelope's `timestamp` (epoch ms) is when Gupshup raised the event.
    if detail.get("ts") not in (None, ""):
        time_value, time_where = detail.get("ts"), "payload.payload.ts"
    else:
        time_value, time_where = doc.get("timestamp"), "timestamp"
    occurred_at, flagged = event_time(time_value, raw.received_at, time_where)
    code = optional_str(detail, "code")
    return new_event(
        raw,
        message_id=message_id,
        status=status,
        provider_status=word,
        occurred_at=occurred_at,
        time_from_receipt=flagged,
        recipient=optional_str(payload, "destination"),
        failure_reason=failure_reason(code) if status is Status.FAILED else None,
        error_code=code,
        error_title=optional_str(detail, "reason"),
        correlation_id=whatsapp_id,
    )


def _parse_v3(raw: RawWebhook, doc: dict[str, Any]) -> ParseResult:
    batch = Batch()
    for where, status in meta.cloud_api_statuses(doc, batch):
        with batch.item(where, status):
            batch.events.append(_v3_event(raw, status, where))
    return batch.result()


def _v3_event(raw: RawWebhook, status: dict[str, Any], where: str) -> StatusEvent:
    event = meta.status_event(raw, status, where, V3_STATUS_MAP, label="Gupshup v3")
    return dataclasses.replace(
        event,
        message_id=optional_str(status, "gs_id") or event.message_id,
        correlation_id=event.message_id,
        failure_reason=failure_reason(event.error_code) if event.status is Status.FAILED else None,
    )
