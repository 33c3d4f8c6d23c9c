"""A deterministic workload: N raw webhooks as the receiver would write them.

A realistic mix of providers (only those whose adapter is registered and parses our bodies),
several statuses per message, ~10% repeats (a provider retrying a webhook) and out-of-order
deliveries (a late `delivered` after its `read`). The same seed always gives the same bytes.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import random
import urllib.parse
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import orjson

from schemas.envelope import RawWebhook
from streams.adapters.base import Adapter
from streams.adapters.registry import ADAPTERS
from streams.core.tracker import track
from streams.domain.lattice import MessageState
from streams.domain.status import RANKED, Status

T0_MS = 1_750_000_000_000
REPEAT_RATE = 0.10
LATE_RATE = 0.12  # a webhook held back by the provider's queue: arrives after later ones
META_BATCH_RATE = 0.15  # Meta packs several statuses into one POST
_LATE, _REPEAT = 1, 2


@dataclasses.dataclass(frozen=True, slots=True)
class Step:
    """One status of one message, before it is wrapped in a provider body."""

    provider: str
    channel: str
    message_id: str
    word: str  # the provider's own status word
    canonical: Status
    at_ms: int
    recipient: str
    campaign: str


# Lifecycles per provider: (weight, [(provider word, canonical status, delay range in s)]).
Lifecycle = tuple[float, tuple[tuple[str, Status, tuple[float, float]], ...]]
_S, _D, _R, _F, _Q = Status.SENT, Status.DELIVERED, Status.READ, Status.FAILED, Status.QUEUED
LIFECYCLES: dict[str, tuple[Lifecycle, ...]] = {
    "meta": (
        (0.55, (("sent", _S, (0.2, 2)), ("delivered", _D, (0.5, 20)), ("read", _R, (5, 900)))),
        (0.20, (("sent", _S, (0.2, 2)), ("delivered", _D, (0.5, 60)))),
        (0.08, (("sent", _S, (0.2, 2)), ("read", _R, (1, 30)))),  # delivered skipped: read implies it
        (0.07, (("sent", _S, (0.2, 2)), ("failed", _F, (1, 120)))),
        (0.05, (("sent", _S, (0.2, 2)),)),
        (0.05, (("failed", _F, (0.2, 2)),)),
    ),
    "twilio": (
        (0.6, (("queued", _Q, (0, 1)), ("sent", _S, (0.2, 2)), ("delivered", _D, (0.5, 20)), ("read", _R, (5, 900)))),
        (0.25, (("queued", _Q, (0, 1)), ("sent", _S, (0.2, 2)), ("delivered", _D, (0.5, 20)))),
        (0.15, (("queued", _Q, (0, 1)), ("undelivered", _F, (1, 60)))),
    ),
    "infobip": (
        (0.8, (("PENDING", _S, (0.2, 2)), ("DELIVERED", _D, (0.5, 30)))),
        (0.1, (("PENDING", _S, (0.2, 2)), ("UNDELIVERABLE", _F, (1, 60)))),
        (0.1, (("REJECTED", _F, (0.2, 2)),)),
    ),
    "vonage": (
        (0.6, (("submitted", _Q, (0, 1)), ("delivered", _D, (0.5, 20)), ("read", _R, (5, 900)))),
        (0.3, (("submitted", _Q, (0, 1)), ("delivered", _D, (0.5, 20)))),
        (0.1, (("submitted", _Q, (0, 1)), ("rejected", _F, (0.2, 5)))),
    ),
    "gupshup": (
        (0.6, (("enqueued", _Q, (0, 1)), ("sent", _S, (0.2, 2)), ("delivered", _D, (0.5, 20)), ("read", _R, (5, 900)))),
        (0.3, (("enqueued", _Q, (0, 1)), ("sent", _S, (0.2, 2)), ("delivered", _D, (0.5, 20)))),
        (0.1, (("enqueued", _Q, (0, 1)), ("failed", _F, (1, 30)))),
    ),
}
# Share of messages per provider, before dropping providers that cannot be used.
MIX: dict[str, float] = {"meta": 0.5, "twilio": 0.2, "infobip": 0.1, "vonage": 0.1, "gupshup": 0.1}
CHANNELS = ("default", "sales", "support", "alerts")


def _iso(ms: int) -> str:
    return dt.datetime.fromtimestamp(ms / 1000, tz=dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _meta_status(step: Step) -> dict[str, Any]:
    status: dict[str, Any] = {
        "id": step.message_id,
        "status": step.word,
        "timestamp": str(step.at_ms // 1000),
        "recipient_id": step.recipient,
        "biz_opaque_callback_data": step.campaign,
    }
    if step.word == "failed":
        status["errors"] = [
            {"code": 131026, "title": "Message undeliverable", "error_data": {"details": "Receiver is incapable"}}
        ]
    else:
        status["conversation"] = {
            "id": f"conv{step.message_id[-12:]}",
            "expiration_timestamp": str(step.at_ms // 1000 + 86_400),
            "origin": {"type": "marketing"},
        }
        status["pricing"] = {"billable": True, "pricing_model": "PMP", "category": "marketing", "type": "regular"}
    return status


def meta_body(steps: Sequence[Step]) -> tuple[bytes, str]:
    """Cloud API notification: `entry[].changes[].value.statuses[]`."""
    doc = {
        "object": "whatsapp_business_account",
        "entry": [
            {
                "id": "102290129340398",
                "changes": [
                    {
                        "value": {
                            "messaging_product": "whatsapp",
                            "metadata": {"display_phone_number": "15550783881", "phone_number_id": "106540352242922"},
                            "statuses": [_meta_status(s) for s in steps],
                        },
                        "field": "messages",
                    }
                ],
            }
        ],
    }
    return orjson.dumps(doc), "application/json"


def twilio_body(steps: Sequence[Step]) -> tuple[bytes, str]:
    """Twilio status callback, form-encoded (no event time: the adapter uses receipt time)."""
    (step,) = steps
    fields = {
        "SmsSid": step.message_id,
        "SmsStatus": step.word,
        "MessageStatus": step.word,
        "To": f"whatsapp:+{step.recipient}",
        "MessagingServiceSid": "MGdb23ec0f89ee2632e46e91d8128f5e2b",
        "MessageSid": step.message_id,
        "AccountSid": "AC5ef8732a3c49700934481addd5ce1659",
        "From": "whatsapp:+14155238886",
        "ApiVersion": "2010-04-01",
        "ChannelPrefix": "whatsapp",
    }
    if step.canonical is Status.FAILED:
        fields["ErrorCode"] = "63016"
    return urllib.parse.urlencode(fields).encode(), "application/x-www-form-urlencoded"


def infobip_body(steps: Sequence[Step]) -> tuple[bytes, str]:
    """Infobip delivery report: `results[]` with `status.groupName`."""
    (step,) = steps
    result = {
        "bulkId": f"bulk-{step.campaign}",
        "messageId": step.message_id,
        "to": step.recipient,
        "sentAt": _iso(step.at_ms - 500),
        "doneAt": _iso(step.at_ms),
        "messageCount": 1,
        "price": {"pricePerMessage": 0, "currency": "EUR"},
        "status": {"groupId": 3, "groupName": step.word, "id": 5, "name": f"{step.word}_VIA_CHANNEL"},
        "error": {"groupId": 0, "groupName": "OK", "id": 0, "name": "NO_ERROR", "permanent": False},
        "channel": "WHATSAPP",
    }
    return orjson.dumps({"results": [result]}), "application/json"


def vonage_body(steps: Sequence[Step]) -> tuple[bytes, str]:
    """Vonage Messages API status webhook."""
    (step,) = steps
    doc: dict[str, Any] = {
        "message_uuid": step.message_id,
        "to": step.recipient,
        "from": "14157386102",
        "timestamp": _iso(step.at_ms),
        "status": step.word,
        "channel": "whatsapp",
        "client_ref": step.campaign,
    }
    if step.canonical is Status.FAILED:
        doc["error"] = {"type": "https://developer.vonage.com/api-errors/messages#1300", "title": "1300"}
    return orjson.dumps(doc), "application/json"


def gupshup_body(steps: Sequence[Step]) -> tuple[bytes, str]:
    """Gupshup v2 message-event (the same id throughout: no id switch in the benchmark)."""
    (step,) = steps
    doc = {
        "app": "statusflow-bench",
        "timestamp": step.at_ms,
        "version": 2,
        "type": "message-event",
        "payload": {
            "id": step.message_id,
            "gsId": step.message_id,
            "type": step.word,
            "destination": step.recipient,
            "payload": {"ts": step.at_ms // 1000} if step.canonical is not Status.FAILED else {"code": 1002},
        },
    }
    return orjson.dumps(doc), "application/json"


BODIES: dict[str, Callable[[Sequence[Step]], tuple[bytes, str]]] = {
    "meta": meta_body,
    "twilio": twilio_body,
    "infobip": infobip_body,
    "vonage": vonage_body,
    "gupshup": gupshup_body,
}


@dataclasses.dataclass(frozen=True, slots=True)
class Workload:
    """The webhooks in delivery order, and what they are made of."""

    webhooks: tuple[RawWebhook, ...]
    seed: int
    mix: dict[str, float]
    excluded: dict[str, str]
    messages: int
    statuses: int
    repeats: int
    late: int


def _webhook(index: int, rng: random.Random, steps: Sequence[Step], received_at: int) -> RawWebhook:
    provider, channel = steps[0].provider, steps[0].channel
    body, content_type = BODIES[provider](steps)
    return RawWebhook(
        request_id=f"{rng.getrandbits(96):024x}{index:08x}",
        provider=provider,
        channel=channel,
        received_at=received_at,
        content_type=content_type,
        url=f"http://127.0.0.1:8080/webhooks/{provider}/{channel}",
        body=body,
        headers={"user-agent": f"{provider}-webhooks/1.0", "x-forwarded-proto": "https"},
        method="POST",
        remote_addr="127.0.0.1",
    )


def usable_providers(adapters: Mapping[str, Adapter] | None = None) -> tuple[dict[str, float], dict[str, str]]:
    """The mix restricted to providers whose registered adapter parses our bodies as intended."""
    adapters = ADAPTERS if adapters is None else adapters
    mix: dict[str, float] = {}
    excluded: dict[str, str] = {}
    for provider, share in MIX.items():
        adapter = adapters.get(provider)
        if adapter is None:
            excluded[provider] = "no adapter registered"
            continue
        problem = _probe(provider, adapter)
        if problem is None:
            mix[provider] = share
        else:
            excluded[provider] = problem
    if not mix:
        msg = f"no provider of the benchmark mix is usable: {excluded}"
        raise RuntimeError(msg)
    total = sum(mix.values())
    return {p: s / total for p, s in mix.items()}, excluded


def _probe(provider: str, adapter: Adapter) -> str | None:
    """None when every status of every lifecycle parses into one event of one message key."""
    rng = random.Random(0)
    for _, path in LIFECYCLES[provider]:
        keys: set[str] = set()
        for word, canonical, _ in path:
            step = Step(provider, "default", f"probe-{provider}-1", word, canonical, T0_MS, "5511999990000", "c-1")
            try:
                events = adapter.parse(_webhook(0, rng, [step], T0_MS + 1)).events
            except Exception as exc:  # noqa: BLE001 - any failure excludes the provider, with its reason
                return f"{word!r} body not parsed: {exc!r}"[:200]
            if len(events) != 1 or events[0].status is not canonical:
                got = [e.status.value for e in events]
                return f"{word!r} parsed as {got}, expected [{canonical.value}]"
            keys.add(events[0].message_key)
        if len(keys) != 1:
            return f"one message became several keys {sorted(keys)}"
    return None


def generate(n: int, seed: int = 7, adapters: Mapping[str, Adapter] | None = None) -> Workload:
    """N webhooks in delivery order; the same (n, seed, adapters) always gives the same bytes."""
    rng = random.Random(seed)
    mix, excluded = usable_providers(adapters)
    providers, weights = list(mix), list(mix.values())
    steps: list[tuple[int, Step, int]] = []  # (delivery time, step, 0 | _LATE | _REPEAT)
    messages = 0
    planned = 0
    # Message starts are spaced so that a workload of any size spans minutes of provider time.
    clock = T0_MS
    while planned < n * 5 // 4 + 10:  # more than enough: Meta batching merges some steps
        provider = rng.choices(providers, weights)[0]
        lifecycles = LIFECYCLES[provider]
        _, path = rng.choices(lifecycles, [w for w, _ in lifecycles])[0]
        messages += 1
        clock += rng.randint(1, 40)
        message_id = f"{provider[:2]}.{seed:x}.{messages:09d}.{rng.getrandbits(40):010x}"
        recipient = f"55{rng.randint(11, 99)}9{rng.randint(10_000_000, 99_999_999)}"
        campaign = f"campaign-{rng.randint(1, 40)}"
        channel = rng.choice(CHANNELS)
        at = clock
        for word, canonical, (lo, hi) in path:
            at += int(rng.uniform(lo, hi) * 1000)
            step = Step(provider, channel, message_id, word, canonical, at, recipient, campaign)
            delivered = at + rng.randint(20, 400)
            kind = 0
            if rng.random() < LATE_RATE:
                delivered += rng.randint(2_000, 120_000)
                kind = _LATE
            steps.append((delivered, step, kind))
            planned += 1
            if rng.random() < REPEAT_RATE:
                steps.append((delivered + rng.randint(1_000, 60_000), step, _REPEAT))
                planned += 1
    steps.sort(key=lambda item: item[0])
    webhooks: list[RawWebhook] = []
    i = 0
    while i < len(steps) and len(webhooks) < n:
        delivered, step, _ = steps[i]
        group = [step]
        i += 1
        if step.provider == "meta" and rng.random() < META_BATCH_RATE:
            # Batch the following Meta statuses of the same channel into this POST.
            while i < len(steps) and len(group) < 3 and steps[i][1].provider == "meta":
                if steps[i][1].channel != step.channel:
                    break
                group.append(steps[i][1])
                i += 1
        webhooks.append(_webhook(len(webhooks), rng, group, delivered))
    used = steps[:i]
    return Workload(
        webhooks=tuple(webhooks),
        seed=seed,
        mix=mix,
        excluded=excluded,
        messages=len({s.message_id for _, s, _ in used}),
        statuses=len(used),
        repeats=sum(kind == _REPEAT for _, _, kind in used),
        late=sum(kind == _LATE for _, _, kind in used),
    )


FinalStatus = tuple[str, int | None, int | None, int | None, int | None, int | None, int | None]


def final_of_state(state: MessageState) -> FinalStatus | None:
    """(status, per-status times) of a state: what the last change of a message must say."""
    status = state.status
    if status is None:
        return None
    return (status.value, *(state.time_of(s) for s in RANKED))  # type: ignore[return-value]


def final_of_change(change: Mapping[str, Any]) -> FinalStatus:
    """The same tuple read from a StatusChange record (Avro or JSON)."""
    return (change["status"], *(change[f"{s.value}_at"] for s in RANKED))


@dataclasses.dataclass(frozen=True, slots=True)
class Reference:
    """The fold of a workload computed in-process with the pure pipeline."""

    states: dict[str, MessageState]
    finals: dict[bytes, FinalStatus]
    events: int
    changes: int
    dead_letters: int


def reference(workload: Workload, adapters: Mapping[str, Adapter] | None = None) -> Reference:
    """Adapters + tracker (the lattice join) over the workload: the final state of every message."""
    adapters = ADAPTERS if adapters is None else adapters
    states: dict[str, MessageState] = {}
    events = changes = dead = 0
    for raw in workload.webhooks:
        adapter = adapters.get(raw.provider)
        if adapter is None:
            dead += 1
            continue
        for event in adapter.parse(raw).events:
            if event.status.is_side_event:
                continue
            events += 1
            key = event.message_key
            tracked = track(states.get(key), event)
            states[key] = tracked.state
            changes += tracked.change is not None
    finals = {k.encode(): f for k, s in states.items() if (f := final_of_state(s)) is not None}
    return Reference(states=states, finals=finals, events=events, changes=changes, dead_letters=dead)
