"""Vonage Messages API status webhooks: one flat JSON status per POST."""

from __future__ import annotations

from typing import Any

from schemas.envelope import RawWebhook
from streams.adapters import error_codes
from streams.adapters._fields import event_time, load_json_object, optional_str, require_str
from streams.adapters.base import ParseResult, UnparseableWebhook, new_event
from streams.domain.status import FailureReason, Status

# The documented Messages API statuses (WhatsApp status callbacks; SDK MessageStatus.Status).
# `submitted` means handed to WhatsApp, not yet confirmed sent by it: queued.
STATUS_MAP: dict[str, Status] = {
    "submitted": Status.QUEUED,
    "delivered": Status.DELIVERED,
    "read": Status.READ,
    "rejected": Status.FAILED,
    "undeliverable": Status.FAILED,
}

# Vonage's published Messages API codes (error_codes/vonage.toml: 1300 not on WhatsApp, 1340
# outside the 24-hour window, 1461 WhatsApp's per-user marketing limit…), then WhatsApp's own
# codes, which Vonage relays for WhatsApp failures (error_codes/meta.toml: 131026, 131049…).
ERROR_CODES = error_codes.table("vonage")
WHATSAPP_CODES = error_codes.table("meta")


class VonageAdapter:
    """Parses one status; an inbound message posted to the status URL is ignored, not an error."""

    name = "vonage"

    def parse(self, raw: RawWebhook) -> ParseResult:
        """The one status a webhook reports."""
        doc = load_json_object(raw.body)
        # An inbound message (misrouted to the status URL) has a message_type and no status.
        if "status" not in doc and "message_type" in doc:
            return ParseResult(ignored=1, ignored_reasons=("inbound message",))
        message_id = require_str(doc, "message_uuid", "body")
        word = require_str(doc, "status", "body")
        status = STATUS_MAP.get(word.lower())
        if status is None:
            msg = f"body.status {word!r} is not a known Vonage status"
            raise UnparseableWebhook(msg)
        occurred_at, flagged = event_time(doc.get("timestamp"), raw.received_at, "body.timestamp")
        error = doc.get("error")
        code, title = _error(error) if isinstance(error, dict) else (None, None)
        reason = None
        if status is Status.FAILED:
            # `rejected` says Vonage refused it; a code that says why more precisely wins.
            said = FailureReason.REJECTED if word.lower() == "rejected" else None
            reason = error_codes.refine(said, ERROR_CODES.reason(code) or WHATSAPP_CODES.reason(code))
        return ParseResult(
            events=(
                new_event(
                    raw,
                    message_id=message_id,
                    status=status,
                    provider_status=word,
                    occurred_at=occurred_at,
                    time_from_receipt=flagged,
                    recipient=optional_str(doc, "to"),
                    campaign=optional_str(doc, "client_ref"),
                    failure_reason=reason,
                    error_code=code,
                    error_title=title,
                    conversation_id=_conversation_id(doc),
                ),
            )
        )


def _error(error: dict[str, Any]) -> tuple[str | None, str | None]:
    """(code, title) of the status's error object.

    The code is the last segment of the `type` URL (`.../messages-olympus#1000`); older payloads
    put the number in `title` instead, and then `detail` is the only readable text; the Messages
    API reference's MessageStatus has `{"code": 1300, "reason": "Not part of the provider network"}`.
    """
    type_url = optional_str(error, "type") or ""
    segment = type_url.rstrip("/#").replace("#", "/").rpartition("/")[2]
    title = optional_str(error, "title")
    title_is_code = title is not None and title.isdigit()
    code = segment if segment.isdigit() else (title if title_is_code else optional_str(error, "code"))
    readable = optional_str(error, "detail") if title_is_code else title
    return code, readable or optional_str(error, "detail") or optional_str(error, "reason")


def _conversation_id(doc: dict[str, Any]) -> str | None:
    whatsapp = doc.get("whatsapp")
    conversation = whatsapp.get("conversation") if isinstance(whatsapp, dict) else None
    return optional_str(conversation, "id") if isinstance(conversation, dict) else None
