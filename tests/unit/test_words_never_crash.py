"""Property: no status word and no time string crashes an adapter. Each either maps (an event,
a channel event, or an item ignored with its reason) or is refused with a reason that says what
(the webhook's dead letter, or the item's own when siblings stand alone): never an exception
other than UnparseableWebhook, never a silent drop."""

from __future__ import annotations

import urllib.parse
from collections.abc import Callable

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from streams.adapters.aivo import AivoAdapter
from streams.adapters.base import Adapter, UnparseableWebhook
from streams.adapters.generic import GenericAdapter
from streams.adapters.registry import ADAPTERS
from streams.adapters.wpp import load_wpp_config
from streams.domain.status import Status
from tests.factories import raw_webhook

# Words the providers use, in every case, with and without accents, and near misses.
_KNOWN = [
    "sent", "delivered", "read", "failed", "error", "received", "queued", "enqueued", "submitted", "rejected",
    "undeliverable", "undelivered", "deleted", "warning", "accepted", "scheduled", "sending", "canceled",
    "Entregue", "Lida", "Enviada", "Falha", "Falhou", "Erro", "Criação", "Expiração", "Número não encontrado",
    "invalid number", "number not found", "logout", "Conexão", "connected", "disconnected", "connection.update",
    "msg_status", "MSG_STATUS", "status", "DELIVERED_TO_HANDSET", "PENDING", "UNDELIVERABLE", "EXPIRED", "SEEN",
    "message-event", "Leído", "recibido", "DELIVERY_ACK",
]  # fmt: skip
WORDS = (
    st.sampled_from(_KNOWN)
    | st.sampled_from(_KNOWN).map(str.upper)
    | st.sampled_from(_KNOWN).map(lambda w: w.replace(" ", "_"))
    | st.text(max_size=24)
)

_TIMES = [
    "2025-06-15 20:20:20", "15/06/2025 20:20:20", "15/06/2025", "2025/06/15 20:20", "15-06-2025 20:20:20.123456789",
    "2025-06-15T20:20:20Z", "2025-06-15T20:20:20-0300", "15/06/2025 20:20:20 +14:00", "31/02/2025 10:00",
    "01/01/0001 00:00:00 +14:00", "31/12/9999 23:59:59 -14:00", "9999-12-31T23:59:59", "0001-01-01 00:00:00",
    "1750030020", "1750030020000", "1e300", "-1", "nan", "inf", "", " ", "99/99/9999 99:99:99",
]  # fmt: skip
TIMES = (
    st.sampled_from(_TIMES)
    | st.text(alphabet="0123456789/-.:T Z+,UTCGM", max_size=32)
    | st.text(max_size=16)
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.none()
)

Body = Callable[[str, object], bytes]


def _json(doc: object) -> bytes:
    return orjson.dumps(doc)


def _cloud(word: str, time: object, **extra: object) -> bytes:
    status = {"id": "wamid.X", "status": word, "timestamp": time, "recipient_id": "5511987654321", **extra}
    return _json({"object": "whatsapp_business_account", "entry": [{"changes": [{"value": {"statuses": [status]}}]}]})


BODIES: dict[str, tuple[Adapter, Body]] = {
    "meta": (ADAPTERS["meta"], _cloud),
    "weni": (ADAPTERS["weni"], lambda w, t: _json({"statuses": [{"id": "m", "status": w, "timestamp": t}]})),
    "weni-courier": (ADAPTERS["weni"], lambda w, t: _json({"id": "m", "status": w, "created_on": t})),
    "gupshup": (
        ADAPTERS["gupshup"],
        lambda w, t: _json({"type": "message-event", "payload": {"id": "g", "type": w, "payload": {"ts": t}}}),
    ),
    "gupshup-v3": (ADAPTERS["gupshup"], lambda w, t: _cloud(w, t, gs_id="g")),
    "aivo": (
        ADAPTERS["aivo"],
        lambda w, t: _json({"message_id": "w", "message_status": w, "event_name": "MSG_STATUS", "event_timestamp": t}),
    ),
    "aivo-sao-paulo": (
        AivoAdapter(timezone="America/Sao_Paulo"),
        lambda w, t: _json([{"message_id": "w", "message_status": w, "event_timestamp": t}]),
    ),
    "vonage": (ADAPTERS["vonage"], lambda w, t: _json({"message_uuid": "u", "status": w, "timestamp": t})),
    "infobip": (
        ADAPTERS["infobip"],
        lambda w, t: _json({"results": [{"messageId": "m", "status": {"groupName": w, "name": w}, "doneAt": t}]}),
    ),
    "twilio": (
        ADAPTERS["twilio"],
        lambda w, t: urllib.parse.urlencode({"MessageSid": "SM1", "MessageStatus": w, "ErrorCode": str(t)}).encode(),
    ),
    "wpp": (ADAPTERS["wpp"], lambda w, t: _json({"id": "x", "status": w, "date": t, "phone": "5511987654321"})),
    "wpp-envelope": (ADAPTERS["wpp"], lambda w, t: _json({"event": "status", "data": {"status": w, "date": t}})),
    "wpp-connection": (ADAPTERS["wpp"], lambda w, t: _json({"event": "connection", "state": w, "timestamp": t})),
    "wpp-sao-paulo": (
        GenericAdapter("wpp", load_wpp_config({"timezone": "America/Sao_Paulo"})),
        lambda w, t: _json({"event": w, "data": {"state": w, "date": t}}),
    ),
    "generic": (ADAPTERS["generic"], lambda w, t: _json({"status": w, "timestamp": t, "to": "5511987654321"})),
}


def _check(name: str, word: str, time: object) -> None:
    adapter, body = BODIES[name]
    content_type = "application/x-www-form-urlencoded" if name == "twilio" else "application/json"
    raw = raw_webhook(name.split("-", maxsplit=1)[0], body(word, time), content_type)
    try:
        result = adapter.parse(raw)
    except UnparseableWebhook as exc:
        assert str(exc).strip(), "a dead letter needs a reason"
        return
    rejected = getattr(result, "rejected", ())
    assert result.events or result.channel_events or result.ignored_reasons or rejected, "dropped silently"
    assert all(str(getattr(r, "reason", r)).strip() for r in rejected)
    for event in result.events:
        assert isinstance(event.status, Status)
        assert isinstance(event.occurred_at, int) and event.occurred_at <= 253_402_300_799_999
    for channel_event in result.channel_events:
        assert channel_event.kind and isinstance(channel_event.occurred_at, int)


@settings(max_examples=600, deadline=None)
@given(name=st.sampled_from(sorted(BODIES)), word=WORDS, time=TIMES)
def test_no_status_word_or_time_crashes_an_adapter(name: str, word: str, time: object) -> None:
    _check(name, word, time)


def test_the_known_words_at_every_known_time() -> None:
    for name in BODIES:
        for word in _KNOWN:
            for time in _TIMES:
                _check(name, word, time)
