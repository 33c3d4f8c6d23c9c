"""Meta WhatsApp Cloud API (also 360dialog's Cloud API): `entry[].changes[].value.statuses[]`.

The walk over a notification (`cloud_api_statuses`) and the parsing of one status dict
(`status_event`) are public so that adapters of providers that forward Meta's shape (Gupshup v3,
Weni's WhatsApp Cloud channels) reuse them instead of copying them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from schemas.envelope import RawWebhook
from streams.adapters import error_codes
from streams.adapters._fields import (
    event_time,
    list_of_objects,
    load_json_object,
    optional_str,
    require_str,
)
from streams.adapters.base import Batch, ParseResult, UnparseableWebhook, new_event
from streams.domain.events import StatusEvent
from streams.domain.status import FailureReason, Status

# Meta's status words; `deleted` and `warning` are side events (docs/architecture.md).
STATUS_MAP: dict[str, Status] = {
    "sent": Status.SENT,
    "delivered": Status.DELIVERED,
    "read": Status.READ,
    "failed": Status.FAILED,
    "deleted": Status.DELETED,
    "warning": Status.WARNING,
}

# Meta's published error codes → failure reasons: data, with its source (error_codes/meta.toml).
ERROR_CODES = error_codes.table("meta")


class MetaAdapter:
    """Parses Cloud API status notifications; inbound `messages[]` are ignored, not errors."""

    name = "meta"

    def parse(self, raw: RawWebhook) -> ParseResult:
        """All statuses of all entries and changes of one POST, each status standing alone."""
        batch = Batch()
        for where, status in cloud_api_statuses(load_json_object(raw.body), batch):
            with batch.item(where, status):
                batch.events.append(status_event(raw, status, where))
        return batch.result()


def cloud_api_statuses(doc: dict[str, Any], batch: Batch) -> list[tuple[str, dict[str, Any]]]:
    """Every status dict of a Cloud API notification with its JSON path.

    Inbound messages are noted in `batch` as ignored; an entry or change that cannot be read is
    rejected there by itself, and the statuses of the others are still returned.
    """
    if "entry" not in doc:
        msg = "body has no entry[]: not a WhatsApp Business Account notification"
        raise UnparseableWebhook(msg)
    statuses: list[tuple[str, dict[str, Any]]] = []
    for at_entry, entry in batch.each(doc["entry"], "entry"):
        with batch.item(at_entry, entry):
            for at_change, change in batch.each(entry.get("changes", []), f"{at_entry}.changes"):
                with batch.item(at_change, change):
                    value = change.get("value")
                    if not isinstance(value, dict):
                        msg = f"{at_change}.value must be an object"
                        raise UnparseableWebhook(msg)
                    where = f"{at_change}.value"
                    found = list(batch.each(value.get("statuses", []), f"{where}.statuses"))
                    inbound = list(batch.each(value.get("messages", []), f"{where}.messages"))
                    statuses.extend(found)
                    batch.ignored_reasons.extend(["inbound message"] * len(inbound))
    return statuses


def failure_reason(code: str | None) -> FailureReason:
    """The failure reason a Meta error code stands for (ERROR when it says nothing more):
    131026 the number is not on WhatsApp, 131047 the 24-hour window closed, 131049 Meta's
    per-user marketing limit (rate_limited, not expired)… (error_codes/meta.toml)."""
    return ERROR_CODES.reason(code) or FailureReason.ERROR


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
