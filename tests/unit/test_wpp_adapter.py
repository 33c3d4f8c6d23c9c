"""WPP Marketing: the generic adapter with the WPP preset, and operator overrides."""

from __future__ import annotations

import tomllib
from typing import Any

import pytest

from schemas.errors import ConfigurationError
from streams.adapters.base import ChannelEvent, ParseResult, UnparseableWebhook
from streams.adapters.generic import GenericAdapter, StatusRule
from streams.adapters.registry import adapter_for
from streams.adapters.wpp import WPP_PRESET, load_generic_config, load_wpp_config
from streams.domain.status import FailureReason, Status
from tests.adapter_harness import AdapterHarness
from tests.factories import event_fields

ADAPTER = GenericAdapter("wpp", WPP_PRESET)
WPP = AdapterHarness(ADAPTER, defaults={"message_id": "wpp-7f3a", "recipient": "551********21", "campaign": "c-77"})


def parse(name: str, adapter: GenericAdapter = ADAPTER) -> ParseResult:
    return adapter.parse(WPP.raw(name))


def expected(status: Status, word: str, occurred_at: int, **overrides: Any) -> dict[str, Any]:
    """Every canonical field of a WPP event."""
    return WPP.expected(status, word, occurred_at=occurred_at, **overrides)


CASES: dict[str, dict[str, Any]] = {
    "queue.json": expected(Status.QUEUED, "queue", 1_750_030_000_000),
    "creation.json": expected(Status.CREATED, "creation", 1_750_030_001_000),
    "delivery.json": expected(Status.DELIVERED, "delivery", 1_750_030_020_000),
    "read.json": expected(Status.READ, "read", 1_750_030_030_000),
    "error.json": expected(
        Status.FAILED,
        "error",
        1_750_030_040_000,
        failure_reason=FailureReason.ERROR,
        error_title="Falha ao enviar a mensagem",
    ),
    "number_not_found.json": expected(
        Status.FAILED, "number not found", 1_750_030_041_000, failure_reason=FailureReason.NOT_FOUND
    ),
    "expiration.json": expected(Status.FAILED, "expiration", 1_750_030_042_000, failure_reason=FailureReason.EXPIRED),
    "portuguese_entrega_iso.json": expected(Status.DELIVERED, "Entrega", 1_750_029_620_000),
}


@pytest.mark.parametrize(("name", "fields"), CASES.items(), ids=list(CASES))
def test_every_canonical_field(name: str, fields: dict[str, Any]) -> None:
    result = parse(name)
    (event,) = result.events
    assert event_fields(event) == fields
    assert result.channel_events == ()


@pytest.mark.parametrize(
    ("name", "detail", "occurred_at"),
    [
        ("logout_event.json", "logout", 1_750_030_099_000),
        ("connection_closed_status.json", "connection closed", 1_750_030_098_000),
    ],
)
def test_logout_is_a_channel_event_not_a_message_status(name: str, detail: str, occurred_at: int) -> None:
    result = parse(name)
    assert result.events == ()
    assert result.channel_events == (ChannelEvent("wpp", "default", "logout", occurred_at, detail=detail),)


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("unknown_status.json", r"status 'teleported' is not a known wpp status"),
        ("missing_id.json", r"body has no message id at 'id', 'message_id', 'messageId'"),
        ("custom_fields.json", r"body has no status at 'status', 'event', 'data\.status', 'data\.event'"),
    ],
)
def test_unparseable_bodies_say_why(name: str, reason: str) -> None:
    with pytest.raises(UnparseableWebhook, match=reason):
        parse(name)


OPERATOR_TOML = """
message_id = "data.messageId"
status = "data.situacao"
timestamp = "data.quando"
recipient = "data.numero"

[statuses]
ENTREGUE = "delivered"
"""


def test_an_operator_adapts_the_preset_without_code() -> None:
    config = load_wpp_config(tomllib.loads(OPERATOR_TOML))
    (event,) = parse("custom_fields.json", GenericAdapter("wpp", config)).events
    assert event_fields(event) == expected(
        Status.DELIVERED,
        "ENTREGUE",
        1_750_030_020_000,
        message_id="wpp-custom-1",
        message_key="wpp:default:wpp-custom-1",
        campaign=None,
    )
    # The preset's words survive the override.
    assert config.statuses["number not found"] == StatusRule(Status.FAILED, FailureReason.NOT_FOUND)
    assert config.channel_events["connection closed"] == "logout"


def test_load_generic_config_over_the_preset_is_the_same_as_load_wpp_config() -> None:
    mapping = tomllib.loads(OPERATOR_TOML)
    assert load_generic_config(mapping, base=WPP_PRESET) == load_wpp_config(mapping)


def test_operator_mistakes_are_configuration_errors() -> None:
    with pytest.raises(ConfigurationError, match=r"statuses\['entregue'\]: 'entregue' is not a canonical status"):
        load_wpp_config({"statuses": {"entregue": "entregue"}})


def test_preset_covers_every_documented_wpp_status() -> None:
    documented = {
        "queue": StatusRule(Status.QUEUED),
        "creation": StatusRule(Status.CREATED),
        "delivery": StatusRule(Status.DELIVERED),
        "read": StatusRule(Status.READ),
        "error": StatusRule(Status.FAILED, FailureReason.ERROR),
        "number not found": StatusRule(Status.FAILED, FailureReason.NOT_FOUND),
        "expiration": StatusRule(Status.FAILED, FailureReason.EXPIRED),
    }
    assert {word: WPP_PRESET.statuses[word] for word in documented} == documented
    assert WPP_PRESET.channel_events["logout"] == WPP_PRESET.channel_events["connection closed"] == "logout"


def test_registered_with_the_preset() -> None:
    adapter = adapter_for("wpp")
    assert isinstance(adapter, GenericAdapter)
    assert adapter.config is WPP_PRESET
    assert adapter.name == "wpp"
