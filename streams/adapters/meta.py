"""Meta WhatsApp Cloud API (also 360dialog's Cloud API): `entry[].changes[].value.statuses[]`."""

from __future__ import annotations

from typing import Any

from schemas.envelope import RawWebhook
from streams.adapters._fields import (
    event_time,
    list_of_objects,
    load_json_object,
    optional_str,
    require_str,
)
from streams.adapters.base import ParseResult, UnparseableWebhook
from streams.domain.events import StatusEvent, mask_number
from streams.domain.status import FailureReason, Status

# Meta's status words; `deleted` and `warning` are side events (DESIGN.md).
STATUS_MAP: dict[str, Status] = {
    "sent": Status.SENT,
    "delivered": Status.DELIVERED,
    "read": Status.READ,
    "failed": Status.FAILED,
    "deleted": Status.DELETED,
    "warning": Status.WARNING,
}

# Error codes that mean the number cannot receive WhatsApp messages, and expiry.
NOT_FOUND_CODES = frozenset({"131026", "1013"})
EXPIRED_CODES = frozenset({"131047", "131049"})


class MetaAdapter:
    """Parses Cloud API status notifications; inbound `messages[]` are ignored, not errors."""

    name = "meta"

    def parse(self, raw: RawWebhook) -> ParseResult:
        """All statuses of all entries and changes of one POST."""
        doc = load_json_object(raw.body)
        entries = list_of_objects(doc, "entry", "body")
        if "entry" not in doc:
            msg = "body has no entry[]: not a WhatsApp Business Account notification"
            raise UnparseableWebhook(msg)
        events: list[StatusEvent] = []
        ignored: list[str] = []
        for i, entry in enumerate(entries):
            for j, change in enumerate(list_of_objects(entry, "changes", f"entry[{i}]")):
                value = change.get("value")
                if not isinstance(value, dict):
                    msg = f"entry[{i}].changes[{j}].value must be an object"
                    raise UnparseableWebhook(msg)
                where = f"entry[{i}].changes[{j}].value"
                for k, status in enumerate(list_of_objects(value, "statuses", where)):
                    events.append(self._event(raw, status, f"{where}.statuses[{k}]"))
                inbound = len(list_of_objects(value, "messages", where))
                ignored.extend(["inbound message"] * inbound)
        return ParseResult(events=tuple(events), ignored=len(ignored), ignored_reasons=tuple(ignored))

    def _event(self, raw: RawWebhook, status: dict[str, Any], where: str) -> StatusEvent:
        word = require_str(status, "status", where)
        canonical = STATUS_MAP.get(word.lower())
        if canonical is None:
            msg = f"{where}.status {word!r} is not a known Meta status"
            raise UnparseableWebhook(msg)
        errors = list_of_objects(status, "errors", where)
        error = errors[0] if errors else {}
        code = optional_str(error, "code")
        occurred_at, flagged = event_time(status.get("timestamp"), raw.received_at, f"{where}.timestamp")
        conversation = status.get("conversation")
        pricing = status.get("pricing")
        reason = None
        if canonical is Status.FAILED:
            reason = FailureReason.ERROR
            if code in NOT_FOUND_CODES:
                reason = FailureReason.NOT_FOUND
            elif code in EXPIRED_CODES:
                reason = FailureReason.EXPIRED
        return StatusEvent(
            provider=raw.provider,
            channel=raw.channel,
            message_id=require_str(status, "id", where),
            status=canonical,
            provider_status=word,
            occurred_at=occurred_at,
            received_at=raw.received_at,
            time_from_receipt=flagged,
            request_id=raw.request_id,
            recipient=mask_number(optional_str(status, "recipient_id")),
            campaign=optional_str(status, "biz_opaque_callback_data"),
            failure_reason=reason,
            error_code=code,
            error_title=optional_str(error, "title") or optional_str(error, "message"),
            conversation_id=optional_str(conversation, "id") if isinstance(conversation, dict) else None,
            pricing_category=optional_str(pricing, "category") if isinstance(pricing, dict) else None,
        )
