"""Issue 16, words and times, on a real broker and worker: every word and format the issue lists
is tracked as the provider means it, with the channels file's `timezone` option; a connection
event that says `connected` raises no logout; a number-not-found report without a message id
raises the channel's alert; Meta's 131049 is its own failure reason."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import aiohttp
import orjson

from schemas.codec import codec
from schemas.envelope import RawWebhook
from schemas.settings import KafkaSettings
from schemas.topics import ensure_topics
from statusflow_cli.samples import MixedStream
from streams.core.records import message_path
from streams.domain.events import parse_message_key
from tests.integration.conftest import WorkerFactory, WorkerProcess
from tests.integration.helpers import consume, wait_until
from tests.integration.test_pipeline import FAST_WINDOWS, produce_raw

ALERT = codec("alert")
# 2025-06-15 20:20:20 in São Paulo (UTC-3): what the channels below mean by their local times.
LOCAL = 1_750_029_620_000
T = LOCAL // 1000

CHANNELS = """
[[channels]]
name = "loja"
provider = "wpp"
[channels.options]
timezone = "America/Sao_Paulo"

[[channels]]
name = "norte"
provider = "aivo"
[channels.options]
timezone = "America/Sao_Paulo"
"""

_AIVO_BASE = {"event_name": "msg_status", "campaign": {"id": "hot-sale"}, "recipient": {"id": "541112341234"}}


def _raw(
    provider: str, channel: str, request_id: str, body: object, content_type: str = "application/json"
) -> RawWebhook:
    return RawWebhook(
        request_id=request_id,
        provider=provider,
        channel=channel,
        received_at=(T + 600) * 1000,
        content_type=content_type,
        url=f"http://127.0.0.1/webhooks/{provider}/{channel}",
        body=body if isinstance(body, bytes) else orjson.dumps(body),
    )


def _wpp(message_id: str, word: str, when: object, *, envelope: bool = False) -> RawWebhook:
    item = {"id": message_id, "status": word, "date": when, "phone": "5511987654321", "campaign_id": "c-77"}
    body = {"event": "status", "data": item} if envelope else item
    return _raw("wpp", "loja", f"req-{message_id}", body)


def _aivo(message_id: str, word: str, when: object, **extra: object) -> RawWebhook:
    body = {**_AIVO_BASE, "message_id": message_id, "message_status": word, "event_timestamp": when, **extra}
    return _raw("aivo", "norte", f"req-{message_id}", body)


def _meta_failed(message_id: str, code: int) -> RawWebhook:
    status = {"id": message_id, "status": "failed", "timestamp": str(T), "errors": [{"code": code, "title": "x"}]}
    body = {"object": "whatsapp_business_account", "entry": [{"changes": [{"value": {"statuses": [status]}}]}]}
    return _raw("meta", "main", f"req-{message_id}", body)


# message key → (status, failure reason, the timestamp that must be set, its value)
EXPECTED: dict[str, tuple[str, str | None, str, int]] = {
    # WPP: the {"event": "status", "data": …} envelope, Portuguese words in any case, local times
    "wpp:loja:w-entregue": ("delivered", None, "delivered_at", LOCAL),
    "wpp:loja:w-entregue-lower": ("delivered", None, "delivered_at", LOCAL + 1000),
    "wpp:loja:w-lida": ("read", None, "read_at", LOCAL + 10_000),
    "wpp:loja:w-enviada": ("sent", None, "sent_at", LOCAL - 10_000),
    "wpp:loja:w-falha": ("failed", "error", "failed_at", LOCAL),
    "wpp:loja:w-falhou": ("failed", "error", "failed_at", LOCAL),
    "wpp:loja:w-erro": ("failed", "error", "failed_at", LOCAL),
    "wpp:loja:w-invalid": ("failed", "not_found", "failed_at", LOCAL),
    # Aivo: received, failed, MSG_STATUS, an empty campaign, local times
    "aivo:norte:a-received": ("delivered", None, "delivered_at", LOCAL),
    "aivo:norte:a-failed": ("failed", "not_found", "failed_at", LOCAL),
    "aivo:norte:a-upper": ("delivered", None, "delivered_at", LOCAL),
    "aivo:norte:a-empty-campaign": ("read", None, "read_at", LOCAL),
    "aivo:norte:a-day-first": ("delivered", None, "delivered_at", LOCAL),
    "aivo:norte:a-iso-local": ("read", None, "read_at", LOCAL),
    # Meta 131049, the per-user marketing limit: its own reason, not expired
    "meta:main:m-131049": ("failed", "rate_limited", "failed_at", LOCAL),
}


def _webhooks() -> list[RawWebhook]:
    return [
        _wpp("w-entregue", "Entregue", "15/06/2025 20:20:20", envelope=True),
        _wpp("w-entregue-lower", "entregue", "15/06/2025 20:20:21"),
        _wpp("w-lida", "LIDA", "2025-06-15 20:20:30"),
        _wpp("w-enviada", "Enviada", "15/06/2025 20:20:10"),
        _wpp("w-falha", "Falha", "15/06/2025 20:20:20"),
        _wpp("w-falhou", "Falhou", "15/06/2025 20:20:20"),
        _wpp("w-erro", "Erro", "2025-06-15 20:20:20", envelope=True),
        _wpp("w-invalid", "invalid number", "15/06/2025 20:20:20"),
        # A number not found before any message existed: no message id.
        _raw("wpp", "loja", "req-nf", {"status": "Número não encontrado", "phone": "5511912345678", "date": T}),
        # Connection events judged by their state: a logout, then the connection back.
        _raw("wpp", "loja", "req-out", {"event": "Conexão", "state": "disconnected", "timestamp": T + 30}),
        _raw("wpp", "loja", "req-in", {"event": "Conexão", "state": "connected", "timestamp": T + 40}),
        # A channel that only ever says it is connected: never a logout.
        _raw("wpp", "quiet", "req-quiet", {"event": "Conexão", "state": "connected", "timestamp": T + 41}),
        _raw("wpp", "quiet", "req-quiet2", {"event": "connection.update", "data": {"state": "open"}, "timestamp": T}),
        _aivo("a-received", "received", str(T)),
        _aivo("a-failed", "failed", str(T), error={"code": 131026, "title": "Message undeliverable"}),
        _aivo("a-upper", "DELIVERED", str(T), event_name="MSG_STATUS"),
        _aivo("a-empty-campaign", "read", str(T), campaign=""),
        _aivo("a-day-first", "delivered", "15/06/2025 20:20:20"),
        _aivo("a-iso-local", "read", "2025-06-15 20:20:20"),
        _meta_failed("m-131049", 131049),
    ]


async def _get(worker: WorkerProcess, path: str) -> dict[str, Any] | None:
    try:
        async with (
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as http,
            http.get(f"{worker.url}{path}") as response,
        ):
            return await response.json() if response.status == 200 else None
    except (aiohttp.ClientError, TimeoutError):
        return None


async def test_every_listed_word_and_format_is_tracked_as_the_provider_means_it(
    kafka_settings: KafkaSettings, start_worker: WorkerFactory, tmp_path: Path
) -> None:
    channels_file = tmp_path / "channels.toml"
    channels_file.write_text(CHANNELS)
    await ensure_topics(kafka_settings)
    await produce_raw(kafka_settings, MixedStream(webhooks=_webhooks(), expected={}))
    worker = start_worker(**FAST_WINDOWS, STATUSFLOW_CHANNELS_FILE=str(channels_file))

    async def tracked() -> dict[str, dict[str, Any]] | None:
        states: dict[str, dict[str, Any]] = {}
        for key in EXPECTED:
            state = await _get(worker, message_path(parse_message_key(key)))
            if state is None or state["status"] != EXPECTED[key][0]:
                return None
            states[key] = state
        return states

    states = await wait_until(tracked, within=120, what="every word to be tracked")
    for key, (status, reason, stamp, at) in EXPECTED.items():
        state = states[key]
        assert state["status"] == status, key
        assert (state["failure"] or {}).get("reason") == reason, key
        assert state["timestamps"][stamp] == at, key
    assert states["aivo:norte:a-empty-campaign"]["campaign"] is None
    assert states["aivo:norte:a-received"]["campaign"] == "hot-sale"
    assert states["wpp:loja:w-entregue"]["campaign"] == "c-77"

    def alerts_seen(records: list[tuple[bytes | None, bytes]]) -> bool:
        kinds = {(a["kind"], a["channel"], a["message_key"]) for a in map(ALERT.decode, (v for _, v in records))}
        return {
            ("number_not_found", "loja", None),
            ("channel_logout", "loja", None),
            ("channel_resolved", "loja", None),
            ("message_failed", "main", "meta:main:m-131049"),
            ("number_not_found", "loja", "wpp:loja:w-invalid"),
        } <= kinds

    try:
        records = await consume(
            kafka_settings.bootstrap_servers, kafka_settings.topics.alerts, until=alerts_seen, within=90
        )
    except AssertionError as exc:
        seen = await consume(kafka_settings.bootstrap_servers, kafka_settings.topics.alerts, until=bool, within=5)
        kinds = sorted(
            {(a["kind"], a["channel"], str(a["message_key"])) for a in map(ALERT.decode, (v for _, v in seen))}
        )
        raise AssertionError(f"{exc}; alerts: {kinds}") from None

    # The channel that only said `connected` has been judged (its state exists) and is connected.
    async def quiet_connected() -> dict[str, Any] | None:
        view = await _get(worker, "/channels/wpp/quiet")
        return view if view is not None and view["connection"] == "connected" else None

    await wait_until(quiet_connected, within=60, what="the channel wpp:quiet to be judged")
    records = await consume(
        kafka_settings.bootstrap_servers,
        kafka_settings.topics.alerts,
        until=lambda rs: len(rs) >= len(records),
        within=30,
    )
    alerts = [ALERT.decode(v) for _, v in records]
    assert not [a for a in alerts if a["kind"] == "channel_logout" and a["channel"] == "quiet"]
    # One logout and its resolution (on different partitions of wa.alerts: keyed by alert_key).
    assert sorted(a["kind"] for a in alerts if a["channel"] == "loja" and a["kind"].startswith("channel_")) == [
        "channel_logout",
        "channel_resolved",
    ]
    (not_found,) = [a for a in alerts if a["kind"] == "number_not_found" and a["message_key"] is None]
    assert (not_found["provider"], not_found["severity"]) == ("wpp", "warning")
    assert "5511912345678" not in not_found["detail"]  # masked like every recipient
    assert not [a for a in alerts if a["kind"] == "message_expired"]  # 131049 is not an expiry
    loja = await _get(worker, "/channels/wpp/loja")
    assert loja is not None and loja["connection"] == "connected"
