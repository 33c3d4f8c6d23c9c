"""Issue 16, the words: every provider's documented vocabulary and its common variants,
matched case- and accent-insensitively; connection events judged by their state; a
number-not-found report without a message id raised as the channel's alert."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from streams.adapters.aivo import AivoAdapter
from streams.adapters.base import ChannelEvent, ParseResult, UnparseableWebhook
from streams.adapters.generic import DEFAULT_CONFIG, GenericAdapter
from streams.adapters.registry import adapter_for
from streams.adapters.wpp import WPP_PRESET
from streams.core.normalizer import normalize
from streams.domain.status import FailureReason, Status
from tests.factories import FIXTURES, raw_webhook

AIVO = AivoAdapter()
WPP = GenericAdapter("wpp", WPP_PRESET)
GENERIC = GenericAdapter("generic", DEFAULT_CONFIG)
WAMID = "wamid.HBgMNTQxMTEyMzQxMjM0FQIAERgSQzg1QTk2RTMyMkQwMDhBQkE1AA=="


def fixture(provider: str, name: str) -> bytes:
    return (FIXTURES / provider / name).read_bytes()


def aivo(name: str) -> ParseResult:
    return AIVO.parse(raw_webhook("aivo", fixture("aivo", name)))


def wpp(name: str) -> ParseResult:
    return WPP.parse(raw_webhook("wpp", fixture("wpp", name)))


def one_status(provider: str, body: dict[str, Any]) -> tuple[Status, FailureReason | None]:
    adapter = adapter_for(provider)
    assert adapter is not None
    (event,) = adapter.parse(raw_webhook(provider, orjson.dumps(body))).events
    return event.status, event.failure_reason


# --- Aivo ----------------------------------------------------------------------------------


def test_aivo_received_is_delivered() -> None:
    (event,) = aivo("status_received.json").events
    assert (event.message_id, event.status, event.provider_status) == (WAMID, Status.DELIVERED, "received")


def test_aivo_failed_is_a_failure_read_by_its_code() -> None:
    (event,) = aivo("status_failed.json").events
    assert (event.status, event.failure_reason, event.error_code) == (Status.FAILED, FailureReason.NOT_FOUND, "131026")


def test_aivo_event_name_in_upper_case_is_a_status_not_ignored() -> None:
    result = aivo("event_name_upper_case.json")
    assert result.ignored == 0
    (event,) = result.events
    assert event.status is Status.DELIVERED


@pytest.mark.parametrize("name", ["campaign_empty_string.json", "campaign_empty_object.json"])
def test_aivo_empty_campaign_is_no_campaign(name: str) -> None:
    (event,) = aivo(name).events
    assert (event.status, event.campaign) == (Status.READ, None)


def test_aivo_spanish_word_with_an_accent() -> None:
    (event,) = aivo("status_spanish_leido.json").events
    assert (event.status, event.provider_status) == (Status.READ, "Leído")


def test_aivo_marketing_limit_is_rate_limited_not_expired() -> None:
    (event,) = aivo("status_error_marketing_limit.json").events
    assert (event.failure_reason, event.error_code) == (FailureReason.RATE_LIMITED, "131049")


@pytest.mark.parametrize(
    ("word", "status"),
    [
        ("sent", Status.SENT),
        ("SENT", Status.SENT),
        ("Enviado", Status.SENT),
        ("delivered", Status.DELIVERED),
        ("Delivered", Status.DELIVERED),
        ("received", Status.DELIVERED),
        ("RECEIVED", Status.DELIVERED),
        ("entregado", Status.DELIVERED),
        ("Recibido", Status.DELIVERED),
        ("read", Status.READ),
        ("Leído", Status.READ),
        ("leido", Status.READ),
        ("error", Status.FAILED),
        ("failed", Status.FAILED),
        ("FAILED", Status.FAILED),
        ("fallido", Status.FAILED),
    ],
)
def test_aivo_words_and_variants(word: str, status: Status) -> None:
    body = {"message_id": WAMID, "message_status": word, "event_name": "msg_status", "event_timestamp": "1750030020"}
    assert one_status("aivo", body)[0] is status


@pytest.mark.parametrize("event_name", ["msg_status", "MSG_STATUS", "Msg_Status", "msg-status", "message_status"])
def test_aivo_event_name_variants_are_statuses(event_name: str) -> None:
    body = {"message_id": WAMID, "message_status": "read", "event_name": event_name}
    assert one_status("aivo", body)[0] is Status.READ


def test_aivo_other_events_are_still_ignored_with_their_name() -> None:
    body = {"message_id": WAMID, "message_status": "read", "event_name": "CONVERSATION_CLOSED"}
    result = AIVO.parse(raw_webhook("aivo", orjson.dumps(body)))
    assert result.events == () and result.ignored_reasons == ("event 'CONVERSATION_CLOSED' (not a message status)",)


def test_aivo_unknown_word_still_dead_letters_with_the_word() -> None:
    body = {"message_id": WAMID, "message_status": "bounced"}
    with pytest.raises(UnparseableWebhook, match=r"message_status 'bounced' is not a known Aivo status"):
        AIVO.parse(raw_webhook("aivo", orjson.dumps(body)))


# --- WPP Marketing -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("word", "status", "reason"),
    [
        # the panel's Portuguese and its variants: accents, case
        ("Entregue", Status.DELIVERED, None),
        ("entregue", Status.DELIVERED, None),
        ("ENTREGUE", Status.DELIVERED, None),
        ("Entrega", Status.DELIVERED, None),
        ("Lida", Status.READ, None),
        ("LIDA", Status.READ, None),
        ("Leitura", Status.READ, None),
        ("Enviada", Status.SENT, None),
        ("enviado", Status.SENT, None),
        ("Fila", Status.QUEUED, None),
        ("Criação", Status.CREATED, None),
        ("CRIACAO", Status.CREATED, None),
        ("Falha", Status.FAILED, FailureReason.ERROR),
        ("Falhou", Status.FAILED, FailureReason.ERROR),
        ("Erro", Status.FAILED, FailureReason.ERROR),
        ("ERRO", Status.FAILED, FailureReason.ERROR),
        ("Expirada", Status.FAILED, FailureReason.EXPIRED),
        ("Expiração", Status.FAILED, FailureReason.EXPIRED),
        ("Número inválido", Status.FAILED, FailureReason.NOT_FOUND),
        ("numero nao encontrado", Status.FAILED, FailureReason.NOT_FOUND),
        # the English page's words
        ("invalid number", Status.FAILED, FailureReason.NOT_FOUND),
        ("Invalid_Number", Status.FAILED, FailureReason.NOT_FOUND),
        ("number not found", Status.FAILED, FailureReason.NOT_FOUND),
        ("expiration", Status.FAILED, FailureReason.EXPIRED),
        # WhatsApp Web acks relayed by WPP-like senders
        ("DELIVERY_ACK", Status.DELIVERED, None),
        ("SERVER_ACK", Status.SENT, None),
        ("PLAYED", Status.READ, None),
    ],
)
def test_wpp_words_and_variants(word: str, status: Status, reason: FailureReason | None) -> None:
    assert one_status("wpp", {"id": "wpp-1", "status": word, "timestamp": 1750030020}) == (status, reason)


@pytest.mark.parametrize(
    ("name", "status", "reason"),
    [
        ("portuguese_lida_upper.json", Status.READ, None),
        ("portuguese_enviada.json", Status.SENT, None),
        ("portuguese_falhou.json", Status.FAILED, FailureReason.ERROR),
        ("portuguese_falha.json", Status.FAILED, FailureReason.ERROR),
        ("portuguese_erro_upper.json", Status.FAILED, FailureReason.ERROR),
        ("invalid_number.json", Status.FAILED, FailureReason.NOT_FOUND),
    ],
)
def test_wpp_golden_fixtures(name: str, status: Status, reason: FailureReason | None) -> None:
    (event,) = wpp(name).events
    assert (event.message_id, event.status, event.failure_reason, event.campaign) == (
        "wpp-7f3a",
        status,
        reason,
        "c-77",
    )


def test_wpp_event_status_envelope_is_read_inside_data() -> None:
    (event,) = wpp("envelope_event_status.json").events
    assert (event.message_id, event.status, event.provider_status) == ("wpp-7f3a", Status.DELIVERED, "Entregue")
    assert (event.campaign, event.recipient) == ("c-77", "5511987654321")
    # 15/06/2025 20:20:20 without a zone: UTC unless the channel says otherwise (test_local_times).
    assert event.occurred_at == 1_750_018_820_000


def test_the_envelope_word_alone_is_not_a_status() -> None:
    body = {"event": "status", "data": {"id": "wpp-1"}}
    with pytest.raises(UnparseableWebhook, match="has no status"):
        WPP.parse(raw_webhook("wpp", orjson.dumps(body)))


# --- number not found without a message id -------------------------------------------------


@pytest.mark.parametrize(
    ("name", "detail"),
    [
        ("invalid_number_without_id.json", "Invalid Number: 5511987654321"),
        ("number_not_found_without_id_pt.json", "Número não encontrado: 5511912345678"),
    ],
)
def test_not_found_without_a_message_id_is_a_channel_event(name: str, detail: str) -> None:
    result = wpp(name)
    assert result.events == ()
    (event,) = result.channel_events
    assert (event.kind, event.detail) == ("number_not_found", detail)


def test_not_found_without_a_message_id_is_normalized_with_the_number_masked() -> None:
    outcome = normalize(raw_webhook("wpp", fixture("wpp", "invalid_number_without_id.json")).to_avro())
    assert outcome.dead_letter_reason is None and outcome.outcome == "normalized"
    (event,) = outcome.channel_events
    assert event.kind == "number_not_found"
    assert event.detail is not None and "5511987654321" not in event.detail


def test_generic_not_found_without_id_is_a_channel_event_too() -> None:
    body = {"status": "number_not_found", "to": "5511900001111", "timestamp": 1750030041}
    (event,) = GENERIC.parse(raw_webhook("generic", orjson.dumps(body))).channel_events
    assert event.kind == "number_not_found"


def test_other_failures_without_an_id_still_dead_letter() -> None:
    with pytest.raises(UnparseableWebhook, match="has no message id"):
        WPP.parse(raw_webhook("wpp", orjson.dumps({"status": "erro", "phone": "5511987654321"})))


# --- connection events by their state ------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "kind", "at"),
    [
        ("connection_connected.json", "connected", 1_750_030_120_000),
        ("connection_disconnected.json", "logout", 1_750_030_099_000),
        ("connection_update_open.json", "connected", 1_750_030_121_000),
        ("status_connected.json", "connected", 1_750_030_122_000),
        ("logout_event.json", "logout", 1_750_030_099_000),
        ("connection_closed_status.json", "logout", 1_750_030_098_000),
    ],
)
def test_connection_events_are_judged_by_their_state(name: str, kind: str, at: int) -> None:
    result = wpp(name)
    assert result.events == ()
    (event,) = result.channel_events
    assert (event.kind, event.occurred_at) == (kind, at)


def test_a_connection_event_that_says_connected_never_becomes_a_logout() -> None:
    for body in (
        {"event": "Conexão", "state": "connected"},
        {"event": "logout", "status": "conectado"},
        {"event": "connection closed", "data": {"state": "open"}},
        {"event": "CONNECTION", "connection": "CONNECTED"},
    ):
        (event,) = WPP.parse(raw_webhook("wpp", orjson.dumps(body))).channel_events
        assert event.kind == "connected", body


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("connection_connecting.json", "in state 'connecting': not a change of connection"),
        ("connection_no_state.json", "without a state"),
    ],
)
def test_transitions_and_stateless_connection_events_are_ignored_with_a_reason(name: str, reason: str) -> None:
    result = wpp(name)
    assert result.channel_events == () and result.events == ()
    (why,) = result.ignored_reasons
    assert reason in why


def test_an_unknown_connection_state_dead_letters_naming_it() -> None:
    body = {"event": "connection", "state": "hibernating"}
    with pytest.raises(UnparseableWebhook, match="unknown state 'hibernating'"):
        WPP.parse(raw_webhook("wpp", orjson.dumps(body)))


def test_wpp_documented_conexao_event_without_a_state_is_still_a_logout() -> None:
    (event,) = WPP.parse(raw_webhook("wpp", b'{"event": "Conex\\u00e3o", "timestamp": 1750030099}')).channel_events
    assert event == ChannelEvent("wpp", "default", "logout", 1_750_030_099_000, detail="Conexão")


def test_generic_default_knows_connected_too() -> None:
    body = {"event": "connection", "state": "open", "timestamp": 1750030099}
    (event,) = GENERIC.parse(raw_webhook("generic", orjson.dumps(body))).channel_events
    assert event.kind == "connected"
