"""The message ids of a webhook its adapter could not parse, read on a best-effort basis.

A dead-lettered webhook still concerns a message when its id can be read: its audit record
names that message and the message's history shows it (docs/runbook.md). The adapter's strict
reading failed somewhere else (an unknown status word, a bad time…), so this reader is lenient:
it walks the body (JSON, or a form read as `streams.adapters.forms` reads it) for the fields each
provider uses for a message id and never raises. An object gives at most one id, the first of its
provider's fields in order (for Gupshup, `gsId` before WhatsApp's `id`, the same preference as its
adapter's). A bare `id` only counts in an object that also has a `status` or `type`: Meta's
`entry[].id` is an account id. A rejected item of a batch (`item_keys`) gives its own ids only.
"""

from __future__ import annotations

import urllib.parse

import orjson

from schemas.envelope import RawWebhook
from streams.adapters.base import UnparseableWebhook
from streams.adapters.forms import load_form
from streams.domain.events import message_key

_COMMON = ("message_id", "messageId", "id")
FIELDS: dict[str, tuple[str, ...]] = {
    "meta": ("id",),
    "weni": ("id", "message_id", "external_id"),
    "gupshup": ("gsId", "gs_id", "id"),
    "twilio": ("MessageSid", "SmsSid"),
    "infobip": ("messageId",),
    "vonage": ("message_uuid",),
    "aivo": ("message_id",),
}
_ID_NEEDS = ("status", "type")
_MAX_ID = 200
_MAX_IDS = 20
_MAX_DEPTH = 8


def message_keys(raw: RawWebhook) -> tuple[str, ...]:
    """The message keys found in `raw`'s body, in order of appearance, without repeats."""
    try:
        doc: object = orjson.loads(raw.body)
    except orjson.JSONDecodeError:
        try:
            doc = load_form(raw.body)
        except UnparseableWebhook:
            try:
                doc = dict(urllib.parse.parse_qsl(raw.body.decode("utf-8", "replace")))
            except ValueError:
                return ()
    return item_keys(raw.provider, raw.channel, doc)


def item_keys(provider: str, channel: str, item: object) -> tuple[str, ...]:
    """The message keys found in one item of a body (a rejected item of a batch: its own ids only)."""
    found: list[str] = []
    _walk(item, FIELDS.get(provider, _COMMON), found, 0)
    keys = dict.fromkeys(message_key(provider, channel, i) for i in found)
    return tuple(keys)[:_MAX_IDS]


def _walk(node: object, fields: tuple[str, ...], found: list[str], depth: int) -> None:
    if depth > _MAX_DEPTH or len(found) >= _MAX_IDS:
        return
    if isinstance(node, list):
        for item in node:
            _walk(item, fields, found, depth + 1)
        return
    if not isinstance(node, dict):
        return
    for field in fields:
        value = node.get(field)
        if field == "id" and not any(k in node for k in _ID_NEEDS):
            continue
        if isinstance(value, int) and not isinstance(value, bool):
            value = str(value)
        if isinstance(value, str) and 0 < len(value) <= _MAX_ID:
            found.append(value)
            break
    for value in node.values():
        if isinstance(value, dict | list):
            _walk(value, fields, found, depth + 1)
