"""Infobip WhatsApp delivery and seen reports: `{"results": [...]}`, several reports per POST."""

from __future__ import annotations

from typing import Any

from schemas.envelope import RawWebhook
from streams.adapters import error_codes
from streams.adapters._fields import event_time, load_json_object, optional_str, require_str
from streams.adapters.base import Batch, ParseResult, UnparseableWebhook, new_event
from streams.domain.events import StatusEvent
from streams.domain.status import FailureReason, Status

# Infobip status groups (Response status and error codes: groups 1-5).
GROUP_MAP: dict[str, Status] = {
    "PENDING": Status.SENT,
    "DELIVERED": Status.DELIVERED,
    "UNDELIVERABLE": Status.FAILED,
    "EXPIRED": Status.FAILED,
    "REJECTED": Status.FAILED,
}

# Status names that refine their group. PENDING_ENROUTE and PENDING_WAITING_DELIVERY mean the
# message left Infobip (sent); only PENDING_ACCEPTED is still at Infobip. DELIVERED_TO_OPERATOR
# is documented as intermediate: the operator has it, the handset does not yet.
NAME_MAP: dict[str, Status] = {
    "PENDING_ACCEPTED": Status.QUEUED,
    "DELIVERED_TO_OPERATOR": Status.SENT,
}

GROUP_REASONS: dict[str, FailureReason] = {
    "UNDELIVERABLE": FailureReason.ERROR,
    "EXPIRED": FailureReason.EXPIRED,
    "REJECTED": FailureReason.REJECTED,
}

# Infobip's published error names → failure reasons (error_codes/infobip.toml: EC_UNKNOWN_SUBSCRIBER
# not found, EC_CALL_BARRED rejected…); a name that says more than `error` refines the group's.
ERROR_CODES = error_codes.table("infobip")

# The provider status word of a seen report, which carries `seenAt` and no status object.
SEEN = "SEEN"


class InfobipAdapter:
    """Parses batched reports; a missing or empty `results` is not an Infobip report."""

    name = "infobip"

    def parse(self, raw: RawWebhook) -> ParseResult:
        """One event per report in `results[]`."""
        doc = load_json_object(raw.body)
        results = doc.get("results", [])
        if results == []:
            msg = "body has no results[]: not an Infobip report"
            raise UnparseableWebhook(msg)
        batch = Batch()
        for where, report in batch.each(results, "results"):
            with batch.item(where, report):
                batch.events.append(self._event(raw, report, where))
        return batch.result()

    def _event(self, raw: RawWebhook, report: dict[str, Any], where: str) -> StatusEvent:
        message_id = require_str(report, "messageId", where)
        reason: FailureReason | None
        if report.get("seenAt") not in (None, ""):
            status, word, reason = Status.READ, SEEN, None
            occurred_at, flagged = event_time(report["seenAt"], raw.received_at, f"{where}.seenAt")
        else:
            status, word, reason = _status(report, where)
            # doneAt is when Infobip finished with the message (the report's own time); sentAt
            # is earlier and only stands in when doneAt is absent.
            key = "doneAt" if report.get("doneAt") not in (None, "") else "sentAt"
            occurred_at, flagged = event_time(report.get(key), raw.received_at, f"{where}.{key}")
        error = report.get("error")
        error = error if isinstance(error, dict) else {}
        code = optional_str(error, "id")
        # Infobip sends error {id 0, NO_ERROR} with every successful report.
        if code == "0":
            code, error = None, {}
        if status is Status.FAILED:
            reason = error_codes.refine(reason, ERROR_CODES.reason(optional_str(error, "name")))
        return new_event(
            raw,
            message_id=message_id,
            status=status,
            provider_status=word,
            occurred_at=occurred_at,
            time_from_receipt=flagged,
            recipient=optional_str(report, "to"),
            campaign=optional_str(report, "callbackData"),
            failure_reason=reason,
            error_code=code,
            error_title=optional_str(error, "name") or optional_str(error, "description"),
        )


def _status(report: dict[str, Any], where: str) -> tuple[Status, str, FailureReason | None]:
    """(canonical status, provider word, failure reason) of a delivery report."""
    status_obj = report.get("status")
    if not isinstance(status_obj, dict):
        msg = f"{where}.status must be an object"
        raise UnparseableWebhook(msg)
    group = require_str(status_obj, "groupName", f"{where}.status").upper()
    canonical = GROUP_MAP.get(group)
    if canonical is None:
        msg = f"{where}.status.groupName {group!r} is not a known Infobip status group"
        raise UnparseableWebhook(msg)
    name = optional_str(status_obj, "name")
    # A name refines only its own group (PENDING_ACCEPTED under PENDING).
    if name and name.upper().startswith(group):
        canonical = NAME_MAP.get(name.upper(), canonical)
    reason = GROUP_REASONS.get(group)
    # UNDELIVERABLE_REJECTED_OPERATOR: the operator refused it, which is a rejection.
    if group == "UNDELIVERABLE" and name and "REJECTED" in name.upper():
        reason = FailureReason.REJECTED
    # The most specific word Infobip gives (DELIVERED_TO_HANDSET), else the group.
    return canonical, name or group, reason
