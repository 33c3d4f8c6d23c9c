"""Meta WhatsApp Cloud API (also 360dialog's Cloud API): `entry[].changes[].value.statuses[]`.

The walk over a notification (`cloud_api_statuses`) and the parsing of one status dict
(`status_event`) are public so that adapters of providers that forward Meta's shape (Gupshup v3,
Weni's WhatsApp Cloud channels) reuse them instead of copying them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from schemas.envelope import RawWebhook
from streams.adapters._fields import (
    event_time,
    list_of_objects,
    load_json_object,
    optional_str,
    require_str,
)
from streams.adapters.base import ParseResult, UnparseableWebhook, new_event
from streams.domain.events import StatusEvent
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
        statuses, ignored = cloud_api_statuses(doc)
        events = tuple(status_event(raw, status, where) for where, status in statuses)
        return ParseResult(events=events, ignored=len(ignored), ignored_reasons=ignored)

    def _event(self, raw: RawWebhook, status: dict[str, Any], where: str) -> StatusEvent:
        return status_event(raw, status, where)


def cloud_api_statuses(doc: dict[str, Any]) -> tuple[list[tuple[str, dict[str, Any]]], tuple[str, ...]]:
    """Every status dict of a Cloud API notification with its JSON path, and why the rest was ignored."""
    entries = list_of_objects(doc, "entry", "body")
    if "entry" not in doc:
        msg = "body has no entry[]: not a WhatsApp Business Account notification"
        raise UnparseableWebhook(msg)
    statuses: list[tuple[str, dict[str, Any]]] = []
    ignored: list[str] = []
    for i, entry in enumerate(entries):
        for j, change in enumerate(list_of_objects(entry, "changes", f"entry[{i}]")):
            value = change.get("value")
            if not isinstance(value, dict):
                msg = f"entry[{i}].changes[{j}].value must be an object"
                raise UnparseableWebhook(msg)
            where = f"entry[{i}].changes[{j}].value"
            for k, status in enumerate(list_of_objects(value, "statuses", where)):
                statuses.append((f"{where}.statuses[{k}]", status))
            inbound = len(list_of_objects(value, "messages", where))
            ignored.extend(["inbound message"] * inbound)
    return statuses, tuple(ignored)


def failure_reason(code: str | None) -> FailureReason:
    """The failure reason a Meta error code stands for (ERROR when it says nothing more)."""
    if code in NOT_FOUND_CODES:
        return FailureReason.NOT_FOUND
    if code in EXPIRED_CODES:
        return FailureReason.EXPIRED
    return FailureReason.ERROR


def status_event(
    raw: RawWebhook,
    status: dict[str, Any],
    where: str,
    status_map: Mapping[str, Status] = STATUS_MAP,
    label: str = "Meta",
) -> StatusEvent:
    """One Cloud API (or On-Premise) status dict as a canonical event, keyed by its `id`.

    `status_map` (lower-case words) and `label` (named in errors) let a provider that forwards
    this shape add its own words, e.g. Gupshup's `enqueued`.
    """
    word = require_str(status, "status", where)
    canonical = status_map.get(word.lower())
    if canonical is None:
        msg = f"{where}.status {word!r} is not a known {label} status"
        raise UnparseableWebhook(msg)
    errors = list_of_objects(status, "errors", where)
    error = errors[0] if errors else {}
    code = optional_str(error, "code")
    occurred_at, flagged = event_time(status.get("timestamp"), raw.received_at, f"{where}.timestamp")
    conversation = status.get("conversation")
    pricing = status.get("pricing")
    return new_event(
        raw,
        message_id=require_str(status, "id", where),
        status=canonical,
        provider_status=word,
        occurred_at=occurred_at,
        time_from_receipt=flagged,
        recipient=optional_str(status, "recipient_id"),
        campaign=optional_str(status, "biz_opaque_callback_data"),
        failure_reason=failure_reason(code) if canonical is Status.FAILED else None,
        error_code=code,
        error_title=optional_str(error, "title") or optional_str(error, "message"),
        conversation_id=optional_str(conversation, "id") if isinstance(conversation, dict) else None,
        pricing_category=optional_str(pricing, "category") if isinstance(pricing, dict) else None,
    )
