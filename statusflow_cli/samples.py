"""Sample webhooks of every provider and their reference fold, for `statusflow demo` and the tests.

The stream has repeats, out-of-order deliveries, failures and a channel logout.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import random
from collections.abc import Callable
from urllib.parse import urlencode

import orjson

from schemas.envelope import RawWebhook
from streams.core.normalizer import normalize
from streams.domain.lattice import MessageState, merge

JSON = "application/json"
FORM = "application/x-www-form-urlencoded"
T0 = 1_750_030_000  # epoch seconds (2025-06-15T23:26:40Z): the tests' fixed origin


def _iso(offset_s: int) -> str:
    return dt.datetime.fromtimestamp(T0 + offset_s, dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def meta(message_id: str, status: str, offset_s: int, error_code: int | None = None) -> tuple[bytes, str]:
    entry: dict[str, object] = {
        "id": message_id,
        "status": status,
        "timestamp": str(T0 + offset_s),
        "recipient_id": "5511987654321",
    }
    if error_code is not None:
        entry["errors"] = [{"code": error_code, "title": "Message undeliverable"}]
    value = {"messaging_product": "whatsapp", "statuses": [entry]}
    body = {
        "object": "whatsapp_business_account",
        "entry": [{"id": "1", "changes": [{"field": "messages", "value": value}]}],
    }
    return orjson.dumps(body), JSON


def twilio(message_id: str, status: str, offset_s: int, error_code: int | None = None) -> tuple[bytes, str]:
    del offset_s  # Twilio sends no event time
    fields = {
        "MessageSid": message_id,
        "MessageStatus": status,
        "To": "whatsapp:+5511987654321",
        "From": "whatsapp:+14155550100",
    }
    if error_code is not None:
        fields["ErrorCode"] = str(error_code)
    return urlencode(fields).encode(), FORM


def vonage(message_id: str, status: str, offset_s: int, error_code: int | None = None) -> tuple[bytes, str]:
    body: dict[str, object] = {
        "message_uuid": message_id,
        "to": "5511987654321",
        "from": "14155550100",
        "timestamp": _iso(offset_s),
        "status": status,
        "channel": "whatsapp",
    }
    if error_code is not None:
        body["error"] = {
            "type": f"https://developer.vonage.com/api-errors/messages#{error_code}",
            "title": str(error_code),
        }
    return orjson.dumps(body), JSON


def infobip(message_id: str, status: str, offset_s: int, error_code: int | None = None) -> tuple[bytes, str]:
    del error_code
    group = {"sent": "PENDING", "delivered": "DELIVERED", "expired": "EXPIRED"}[status]
    result = {
        "messageId": message_id,
        "to": "5511987654321",
        "status": {"groupName": group, "name": group},
        "doneAt": _iso(offset_s),
    }
    return orjson.dumps({"results": [result]}), JSON


def gupshup(message_id: str, status: str, offset_s: int, error_code: int | None = None) -> tuple[bytes, str]:
    # v2: Gupshup's id on enqueued/failed, WhatsApp's id with gsId afterwards (one message).
    inner: dict[str, object] = {"ts": T0 + offset_s}
    if status in {"enqueued", "failed"}:
        payload: dict[str, object] = {"id": message_id, "type": status, "destination": "919876543210"}
        if error_code is not None:
            inner.update({"code": error_code, "reason": "Message undeliverable"})
    else:
        payload = {"id": f"wa-{message_id}", "gsId": message_id, "type": status, "destination": "919876543210"}
    payload["payload"] = inner
    body = {
        "app": "Shop",
        "version": 2,
        "type": "message-event",
        "payload": payload,
        "timestamp": (T0 + offset_s) * 1000,
    }
    return orjson.dumps(body), JSON


def aivo(message_id: str, status: str, offset_s: int, error_code: int | None = None) -> tuple[bytes, str]:
    del error_code
    body = {
        "message_id": message_id,
        "message_status": status,
        "event_name": "msg_status",
        "event_timestamp": str(T0 + offset_s),
        "channel": {"channel_type": "Whatsapp", "name": "Norte", "sender_id": "5491155550000"},
        "campaign": {"id": "hot-sale", "name": "Hot Sale"},
        "recipient": {"id": "541112341234"},
    }
    return orjson.dumps(body), JSON


def weni(message_id: str, status: str, offset_s: int, error_code: int | None = None) -> tuple[bytes, str]:
    del error_code  # courier codes: Q queued, S sent, D delivered, V read, F failed
    return orjson.dumps(
        {"id": message_id, "status": status, "timestamp": _iso(offset_s), "recipient_id": "5582999999999"}
    ), JSON


def wpp(message_id: str, status: str, offset_s: int, error_code: int | None = None) -> tuple[bytes, str]:
    del error_code
    if status == "logout":
        return orjson.dumps({"event": "logout", "timestamp": T0 + offset_s, "phone": "5511900000000"}), JSON
    body = {
        "id": message_id,
        "status": status,
        "timestamp": T0 + offset_s,
        "phone": "5511987654321",
        "campaign_id": "c-77",
    }
    return orjson.dumps(body), JSON


def generic(message_id: str, status: str, offset_s: int, error_code: int | None = None) -> tuple[bytes, str]:
    body: dict[str, object] = {"id": message_id, "status": status, "timestamp": _iso(offset_s), "to": "+5511987654321"}
    if error_code is not None:
        body["error"] = {"code": str(error_code), "title": "rejected by the operator"}
    return orjson.dumps(body), JSON


Builder = Callable[[str, str, int, int | None], tuple[bytes, str]]

# (provider, builder, lifecycle of (provider status, seconds after T0, error code)) per message kind.
LIFECYCLES: dict[str, tuple[Builder, list[list[tuple[str, int, int | None]]]]] = {
    "meta": (meta, [[("sent", 0, None), ("delivered", 3, None), ("read", 20, None)],
                    [("sent", 0, None), ("read", 9, None)],
                    [("sent", 0, None), ("failed", 4, 131026)]]),
    "twilio": (twilio, [[("queued", 0, None), ("sent", 1, None), ("delivered", 2, None)],
                        [("queued", 0, None), ("undelivered", 2, 63016)]]),
    "vonage": (vonage, [[("submitted", 0, None), ("delivered", 5, None), ("read", 30, None)],
                        [("submitted", 0, None), ("rejected", 1, 1300)]]),
    "infobip": (infobip, [[("sent", 0, None), ("delivered", 6, None)],
                          [("sent", 0, None), ("expired", 60, None)]]),
    "gupshup": (gupshup, [[("enqueued", 0, None), ("sent", 1, None), ("delivered", 2, None), ("read", 9, None)],
                          [("enqueued", 0, None), ("failed", 1, 1002)]]),
    "aivo": (aivo, [[("sent", 0, None), ("delivered", 2, None), ("read", 5, None)],
                    [("sent", 0, None), ("error", 3, None)]]),
    "weni": (weni, [[("Q", 0, None), ("S", 1, None), ("D", 4, None), ("V", 8, None)],
                    [("S", 0, None), ("F", 2, None)]]),
    "wpp": (wpp, [[("queue", 0, None), ("creation", 1, None), ("delivery", 3, None), ("read", 7, None)],
                  [("queue", 0, None), ("number not found", 2, None)]]),
    "generic": (generic, [[("queued", 0, None), ("sent", 1, None), ("delivered", 2, None)],
                          [("sent", 0, None), ("rejected", 1, 4001)]]),
}  # fmt: skip

# Channel events sent once in the stream: (provider, builder, status, seconds after T0).
CHANNEL_EVENTS = [("wpp", wpp, "logout", 100)]


@dataclasses.dataclass(frozen=True)
class MixedStream:
    """The webhooks in the order they are sent, and the expected final state per message key."""

    webhooks: list[RawWebhook]
    expected: dict[str, MessageState]


def mixed_stream(
    messages_per_kind: int = 3, seed: int = 11, repeat_all: bool = True, prefix: str = "", t0: int = T0
) -> MixedStream:
    """Every lifecycle of every provider, shuffled, each webhook delivered twice when `repeat_all`.

    Event times start at `t0` (epoch seconds). The demo passes a recent time: a live stack
    judges windows and retention by event time, and would retire messages from 2025 at once.
    """
    shift = t0 - T0
    rng = random.Random(seed)  # noqa: S311 - a reproducible shuffle, not a secret
    bodies: list[tuple[str, bytes, str]] = []
    for provider, (build, lifecycles) in LIFECYCLES.items():
        for kind, lifecycle in enumerate(lifecycles):
            for n in range(messages_per_kind):
                message_id = f"{prefix}{provider}-{kind}-{n}"
                for status, offset, code in lifecycle:
                    body, content_type = build(message_id, status, offset + n + shift, code)
                    bodies.append((provider, body, content_type))
    for provider, build, status, offset in CHANNEL_EVENTS:
        body, content_type = build(f"{prefix}{provider}-channel", status, offset + shift, None)
        bodies.append((provider, body, content_type))
    if repeat_all:
        bodies += list(bodies)
    rng.shuffle(bodies)
    webhooks = [
        RawWebhook(
            request_id=f"{prefix}req-{i:05d}",
            provider=provider,
            channel="main",
            # Twilio's times come from receipt: one receipt time per message keeps the reference exact.
            received_at=t0 * 1000 + 500,
            content_type=content_type,
            url=f"http://127.0.0.1/webhooks/{provider}/main",
            body=body,
        )
        for i, (provider, body, content_type) in enumerate(bodies)
    ]
    return MixedStream(webhooks=webhooks, expected=reference_fold(webhooks))


def reference_fold(webhooks: list[RawWebhook]) -> dict[str, MessageState]:
    """The state every message must end in: the lattice fold of everything the adapters parse."""
    states: dict[str, MessageState] = {}
    for webhook in webhooks:
        result = normalize(webhook.to_avro())
        assert result.dead_letter_reason is None, result.dead_letter_reason
        for event in result.events:
            states[event.message_key] = merge(states.get(event.message_key), event)
    return states
