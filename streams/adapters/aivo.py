"""Aivo Engage Webhook API for WhatsApp: one status object per POST, or a list of them.

Shape (Aivo help center, "Description and operation of the Engage Webhook API for the WhatsApp
channel"): `message_id` (WhatsApp's wamid), `message_status` (sent, delivered, read, error),
`event_name: "msg_status"`, `event_timestamp` (epoch seconds as a string),
`channel{channel_type,name,sender_id}`, `campaign{id,name}`, `recipient{id}`.
Aivo publishes no error fields; `error{code,title|message|description}` or flat
`error_code`/`error_message` are read when present.
"""

from __future__ import annotations

from typing import Any

from schemas.envelope import RawWebhook
from streams.adapters import meta
from streams.adapters._fields import event_time, load_json, optional_str, require_str
from streams.adapters.base import ParseResult, UnparseableWebhook, new_event
from streams.domain.events import StatusEvent
from streams.domain.status import Status

STATUS_MAP: dict[str, Status] = {
    "sent": Status.SENT,
    "delivered": Status.DELIVERED,
    "read": Status.READ,
    "error": Status.FAILED,
}

STATUS_EVENT = "msg_status"


class AivoAdapter:
    """Parses Engage status events; other `event_name`s are ignored, not errors."""

    name = "aivo"

    def parse(self, raw: RawWebhook) -> ParseResult:
        """Every status event of one POST."""
        doc = load_json(raw.body)
        if isinstance(doc, dict):
            items: list[tuple[str, Any]] = [("body", doc)]
        elif isinstance(doc, list) and doc:
            items = [(f"body[{i}]", item) for i, item in enumerate(doc)]
        else:
            msg = "body must be a JSON object or a non-empty list of objects"
            raise UnparseableWebhook(msg)
        events: list[StatusEvent] = []
        ignored: list[str] = []
        for where, item in items:
            if not isinstance(item, dict):
                msg = f"{where} must be an object"
                raise UnparseableWebhook(msg)
            # A missing event_name is read as a status: the field only distinguishes other events.
            event_name = optional_str(item, "event_name") or STATUS_EVENT
            if event_name != STATUS_EVENT:
                ignored.append(f"event {event_name!r} (not a message status)")
                continue
            events.append(_event(raw, item, where))
        return ParseResult(events=tuple(events), ignored=len(ignored), ignored_reasons=tuple(ignored))


def _event(raw: RawWebhook, item: dict[str, Any], where: str) -> StatusEvent:
    word = require_str(item, "message_status", where)
    status = STATUS_MAP.get(word.lower())
    if status is None:
        msg = f"{where}.message_status {word!r} is not a known Aivo status"
        raise UnparseableWebhook(msg)
    occurred_at, flagged = event_time(item.get("event_timestamp"), raw.received_at, f"{where}.event_timestamp")
    error = _object(item, "error", where)
    code = optional_str(error, "code") or optional_str(item, "error_code")
    title = (
        optional_str(error, "title")
        or optional_str(error, "message")
        or optional_str(error, "description")
        or optional_str(item, "error_message")
    )
    campaign = _object(item, "campaign", where)
    recipient = _object(item, "recipient", where)
    return new_event(
        raw,
        message_id=require_str(item, "message_id", where),
        status=status,
        provider_status=word,
        occurred_at=occurred_at,
        time_from_receipt=flagged,
        recipient=optional_str(recipient, "id"),
        campaign=optional_str(campaign, "id") or optional_str(campaign, "name"),
        # Engage sends WhatsApp's own message ids, so its error codes are Meta's.
        failure_reason=meta.failure_reason(code) if status is Status.FAILED else None,
        error_code=code,
        error_title=title,
    )


def _object(item: dict[str, Any], key: str, where: str) -> dict[str, Any]:
    value = item.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        msg = f"{where}.{key} must be an object"
        raise UnparseableWebhook(msg)
    return value
