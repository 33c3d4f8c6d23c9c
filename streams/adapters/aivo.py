"""Aivo Engage Webhook API for WhatsApp: one status object per POST, or a list of them.

Shape (Aivo help center, "Description and operation of the Engage Webhook API for the WhatsApp
channel", helpaivoen.aivohelp.com/article/…/698654): `message_id` (WhatsApp's wamid),
`message_status` (sent, delivered, read, error; the same page says a message goes "from sent to
received", and senders also write `failed`), `event_name: "msg_status"`, `event_timestamp`
(epoch seconds as a string), `channel{channel_type,name,sender_id}`, `campaign{id,name}`,
`recipient{id}`. Words are matched case- and accent-insensitively, with the Spanish and
Portuguese words of Aivo's panels (enviado, entregado/entregue, recibido, leído/lida, fallido…);
`event_name` too (`MSG_STATUS`). An empty `campaign` (`""`, `{}`, null) is no campaign; a bare
string is the campaign's name.

Aivo publishes no error fields; `error{code,title|message|description}` or flat
`error_code`/`error_message` are read when present (Meta's codes: Engage relays WhatsApp's).
A time without a zone (`2025-06-15 20:20:20`, `15/06/2025 20:20:20`) is read in the channel's
`timezone` option (default UTC).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from schemas.envelope import RawWebhook
from schemas.errors import ConfigurationError
from streams.adapters import meta
from streams.adapters._fields import event_time, load_json, normalize_word, optional_str, require_str, zone
from streams.adapters.base import Batch, ParseResult, UnparseableWebhook, new_event
from streams.domain.events import StatusEvent
from streams.domain.status import Status

# Keys in normalize_word form (lower case, no accents). Documented: sent, delivered, read,
# error; "received" is the documented example of a change ("from sent to received": the
# recipient received it); the rest are the variants Aivo's panels and exports use.
STATUS_MAP: dict[str, Status] = {
    normalize_word(word): status
    for words, status in (
        (("sent", "enviado", "enviada"), Status.SENT),
        (("delivered", "received", "entregado", "entregada", "entregue", "recibido", "recibida"), Status.DELIVERED),
        (("read", "seen", "leido", "leida", "lido", "lida", "visto"), Status.READ),
        (("error", "failed", "failure", "undelivered", "fallido", "fallida", "falha", "falhou", "erro"), Status.FAILED),
    )
    for word in words
}

STATUS_EVENT = "msg_status"
# event_name values that mean a message status (compared in normalize_word form: MSG_STATUS too).
STATUS_EVENTS = frozenset(normalize_word(w) for w in (STATUS_EVENT, "message_status", "status"))

# Channel options an Aivo channel understands (`options` in the channels file).
OPTION_KEYS = frozenset({"timezone"})


class AivoAdapter:
    """Parses Engage status events; other `event_name`s are ignored, not errors."""

    name = "aivo"

    def __init__(self, timezone: str = "UTC") -> None:
        self.timezone = timezone
        self._tz = zone(timezone)

    def parse(self, raw: RawWebhook) -> ParseResult:
        """Every status event of one POST."""
        doc = load_json(raw.body)
        batch = Batch()
        if isinstance(doc, dict):
            _read(raw, doc, "body", batch, self._tz)
        elif isinstance(doc, list) and doc:
            # Each element of a list stands alone: a bad one is dead-lettered by itself.
            for where, item in batch.each(doc, "body"):
                with batch.item(where, item):
                    _read(raw, item, where, batch, self._tz)
        else:
            msg = "body must be a JSON object or a non-empty list of objects"
            raise UnparseableWebhook(msg)
        return batch.result()


def load_aivo_adapter(options: Mapping[str, Any]) -> AivoAdapter:
    """An Aivo adapter for a channel's options (`timezone`); ConfigurationError says what is wrong."""
    unknown = sorted(str(k) for k in options if k not in OPTION_KEYS)
    if unknown:
        msg = f"aivo options: unknown key(s) {unknown}; known keys are {sorted(OPTION_KEYS)}"
        raise ConfigurationError(msg)
    try:
        return AivoAdapter(timezone=options.get("timezone", "UTC"))
    except ValueError as exc:
        msg = f"aivo options: {exc}"
        raise ConfigurationError(msg) from exc


def _read(raw: RawWebhook, item: dict[str, Any], where: str, batch: Batch, tz: dt.tzinfo = dt.UTC) -> None:
    # A missing event_name is read as a status: the field only distinguishes other events.
    event_name = optional_str(item, "event_name") or STATUS_EVENT
    if normalize_word(event_name) not in STATUS_EVENTS:
        batch.ignored_reasons.append(f"event {event_name!r} (not a message status)")
        return
    batch.events.append(_event(raw, item, where, tz))


def _event(raw: RawWebhook, item: dict[str, Any], where: str, tz: dt.tzinfo = dt.UTC) -> StatusEvent:
    word = require_str(item, "message_status", where)
    status = STATUS_MAP.get(normalize_word(word))
    if status is None:
        msg = f"{where}.message_status {word!r} is not a known Aivo status"
        raise UnparseableWebhook(msg)
    occurred_at, flagged = event_time(item.get("event_timestamp"), raw.received_at, f"{where}.event_timestamp", tz)
    error = _object(item, "error", where, text_key="title")
    code = optional_str(error, "code") or optional_str(item, "error_code")
    title = (
        optional_str(error, "title")
        or optional_str(error, "message")
        or optional_str(error, "description")
        or optional_str(item, "error_message")
    )
    campaign = _object(item, "campaign", where, text_key="name")
    recipient = _object(item, "recipient", where, text_key="id")
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


def _object(item: dict[str, Any], key: str, where: str, text_key: str) -> dict[str, Any]:
    """A nested object; null, `""` or a blank string is an empty one (issue 16: an empty
    `campaign` must not dead-letter the status) and a bare string stands for `text_key`."""
    value = item.get(key)
    if value is None:
        return {}
    if isinstance(value, str):
        return {text_key: value.strip()} if value.strip() else {}
    if not isinstance(value, dict):
        msg = f"{where}.{key} must be an object"
        raise UnparseableWebhook(msg)
    return value
