"""Weni: the provider's own request body, forwarded once without retry.

Weni relays what the WhatsApp provider sent it, as JSON or as a form (read by
`streams.adapters.forms`: bracketed names, a field holding the JSON, or flat fields), so three
shapes arrive:

* a WhatsApp Cloud channel: Meta's `entry[].changes[].value.statuses[]` (parsed by the Meta
  adapter's functions);
* an older channel: the On-Premise body `{"statuses": [{"id","status","timestamp",
  "recipient_id","errors":[…]}]}`, with Meta's words plus On-Premise `warning` and `deleted`;
* a flat courier-like body `{"id"|"message_id"|"external_id", "status": …}`.

Wherever a `status` carries a courier status code instead of a word, the code is read
(nyaruka/courier `MsgStatus`, Weni's fork adds `V` for read). As Weni does not retry, a
dead-lettered webhook cannot be re-sent by the provider: the raw topic is the only copy.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from schemas.envelope import RawWebhook
from streams.adapters import meta
from streams.adapters._fields import optional_str
from streams.adapters.base import Batch, ParseResult, UnparseableWebhook
from streams.adapters.forms import load_document
from streams.domain.events import StatusEvent
from streams.domain.status import FailureReason, Status

# Courier codes, kept lower-case like every key of a status map (the lookup lower-cases).
COURIER_CODES: dict[str, Status] = {
    "p": Status.QUEUED,  # pending
    "q": Status.QUEUED,  # queued
    "w": Status.SENT,  # wired: handed to the provider
    "s": Status.SENT,
    "d": Status.DELIVERED,
    "v": Status.READ,
    "r": Status.READ,
    "e": Status.RETRYING,  # errored, courier will retry: a side event (docs/architecture.md)
    "f": Status.FAILED,
}

STATUS_MAP: dict[str, Status] = {**meta.STATUS_MAP, **COURIER_CODES}

# On-Premise 470: the 24-hour customer service window had closed (Cloud API's 131047).
EXPIRED_CODES = frozenset({"470"})

# Keys of the flat courier-like body, in order of preference.
_ID_KEYS = ("id", "message_id", "external_id")


class WeniAdapter:
    """Parses the Cloud API, On-Premise and courier-like bodies Weni forwards."""

    name = "weni"

    def parse(self, raw: RawWebhook) -> ParseResult:
        """Every status of one forwarded body, JSON or form; each status of a list stands alone."""
        doc = load_document(raw)
        if not isinstance(doc, dict):
            msg = f"body is a JSON {type(doc).__name__}, expected an object"
            raise UnparseableWebhook(msg)
        batch = Batch()
        if "entry" in doc:
            statuses = meta.cloud_api_statuses(doc, batch)
        elif "statuses" in doc or "messages" in doc:
            statuses = list(batch.each(doc.get("statuses", []), "statuses"))
            inbound = list(batch.each(doc.get("messages", []), "messages"))
            batch.ignored_reasons.extend(["inbound message"] * len(inbound))
        elif "status" in doc:
            batch.events.append(_event(raw, _courier_status(doc), "body"))
            return batch.result()
        else:
            msg = "body has no entry[], statuses[] or status: not a status Weni forwards"
            raise UnparseableWebhook(msg)
        for where, status in statuses:
            with batch.item(where, status):
                batch.events.append(_event(raw, status, where))
        return batch.result()


def _event(raw: RawWebhook, status: dict[str, Any], where: str) -> StatusEvent:
    event = meta.status_event(raw, status, where, STATUS_MAP, label="Weni")
    if event.status is Status.FAILED and event.error_code in EXPIRED_CODES:
        event = dataclasses.replace(event, failure_reason=FailureReason.EXPIRED)
    return event


def _courier_status(doc: dict[str, Any]) -> dict[str, Any]:
    """The flat body in the On-Premise status shape, so one parser reads both."""
    message_id = next((optional_str(doc, key) for key in _ID_KEYS if optional_str(doc, key)), None)
    if message_id is None:
        msg = "body has a status but no id, message_id or external_id"
        raise UnparseableWebhook(msg)
    errors = doc.get("errors")
    if errors is None and isinstance(doc.get("error"), dict):
        errors = [doc["error"]]
    return {
        "id": message_id,
        "status": doc.get("status"),
        "timestamp": doc.get("timestamp", doc.get("created_on")),
        "recipient_id": optional_str(doc, "recipient_id") or _urn_path(optional_str(doc, "urn")),
        "errors": [] if errors is None else errors,
    }


def _urn_path(urn: str | None) -> str | None:
    """`whatsapp:5511…` → `5511…`: courier names contacts by URN, the mask wants the number."""
    return urn.partition(":")[2] or urn if urn else None
