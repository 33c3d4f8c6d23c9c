"""Twilio Programmable Messaging status callbacks (form-encoded), WhatsApp and SMS alike."""

from __future__ import annotations

from urllib.parse import parse_qs

from schemas.envelope import RawWebhook
from streams.adapters import error_codes
from streams.adapters.base import ParseResult, UnparseableWebhook, new_event
from streams.domain.status import FailureReason, Status

# Twilio's MessageStatus words (Message resource, "Outbound Message Status in Status Callbacks").
# `accepted`/`scheduled` are the initial statuses of a Messaging Service; `canceled` only
# happens before sending, so it is a side event (docs/architecture.md).
STATUS_MAP: dict[str, Status] = {
    "accepted": Status.QUEUED,
    "scheduled": Status.QUEUED,
    "queued": Status.QUEUED,
    "sending": Status.CREATED,
    "sent": Status.SENT,
    "delivered": Status.DELIVERED,
    "read": Status.READ,
    "undelivered": Status.FAILED,
    "failed": Status.FAILED,
    "canceled": Status.CANCELED,
}

# Statuses of inbound messages: not ours to track, audited as ignored.
INBOUND = frozenset({"receiving", "received"})

# Twilio's published error codes → failure reasons (error_codes/twilio.toml): 63024/63003/21211/
# 21614 not found, 21610 (replied STOP) rejected, 63016 outside the 24-hour window expired,
# 63018/63049 rate limited…
ERROR_CODES = error_codes.table("twilio")

# Callbacks carry a few dozen fields; anything far beyond is not a Twilio callback.
_MAX_FIELDS = 200


class TwilioAdapter:
    """Parses one status callback; inbound (receiving/received) is ignored, not an error."""

    name = "twilio"

    def parse(self, raw: RawWebhook) -> ParseResult:
        """The one status a callback reports."""
        form = _load_form(raw.body)
        message_id = _first(form, "MessageSid", "SmsSid")
        # SmsStatus is the deprecated twin of MessageStatus; both come in SMS callbacks.
        word = _first(form, "MessageStatus", "SmsStatus")
        if message_id is None:
            msg = "form has no MessageSid"
            raise UnparseableWebhook(msg)
        if word is None:
            msg = "form has no MessageStatus"
            raise UnparseableWebhook(msg)
        if word.lower() in INBOUND:
            return ParseResult(ignored=1, ignored_reasons=(f"inbound message ({word})",))
        status = STATUS_MAP.get(word.lower())
        if status is None:
            msg = f"MessageStatus {word!r} is not a known Twilio status"
            raise UnparseableWebhook(msg)
        code = _first(form, "ErrorCode")
        # Twilio sends no event time: receipt stands in and is flagged; the event id leaves
        # such a time out, so a re-delivered callback is still a duplicate.
        return ParseResult(
            events=(
                new_event(
                    raw,
                    message_id=message_id,
                    status=status,
                    provider_status=word,
                    occurred_at=raw.received_at,
                    time_from_receipt=True,
                    recipient=_address(_first(form, "To")),
                    failure_reason=_reason(code) if status is Status.FAILED else None,
                    # "0" is what some callbacks carry when there is no error.
                    error_code=code if code and code != "0" else None,
                    error_title=_first(form, "ErrorMessage"),
                ),
            )
        )


def _load_form(body: bytes) -> dict[str, list[str]]:
    try:
        text = body.decode("utf-8")
        form = parse_qs(text, keep_blank_values=True, strict_parsing=True, errors="strict", max_num_fields=_MAX_FIELDS)
    except UnicodeDecodeError as exc:
        msg = f"form body is not UTF-8: {exc}"
        raise UnparseableWebhook(msg) from exc
    except ValueError as exc:
        msg = f"body is not a valid form: {exc}"
        raise UnparseableWebhook(msg) from exc
    return form


def _first(form: dict[str, list[str]], *names: str) -> str | None:
    """The value of the first field present; a field repeated with different values is refused."""
    for name in names:
        values = form.get(name)
        if not values:
            continue
        if len(set(values)) > 1:
            msg = f"form field {name} has conflicting values"
            raise UnparseableWebhook(msg)
        value = values[0].strip()
        if value:
            return value
    return None


def _address(value: str | None) -> str | None:
    """`whatsapp:+1555...` → `+1555...`: the channel prefix is not part of the number."""
    if value is None:
        return None
    return value.rpartition(":")[2] or None


def _reason(code: str | None) -> FailureReason:
    return ERROR_CODES.reason(code) or FailureReason.ERROR
