"""The configurable generic adapter, its paths and its configuration loader."""

from __future__ import annotations

import re
import tomllib
from typing import Any

import pytest

from schemas.errors import ConfigurationError
from streams.adapters.base import ChannelEvent, ParseResult, UnparseableWebhook
from streams.adapters.generic import (
    DEFAULT_CONFIG,
    GenericAdapter,
    GenericConfig,
    JsonPath,
    StatusRule,
    load_generic_config,
)
from streams.adapters.registry import adapter_for
from streams.domain.status import FailureReason, Status
from tests.adapter_harness import RECEIVED_AT, AdapterHarness
from tests.factories import event_fields, raw_webhook, refusal

ADAPTER = GenericAdapter("generic")
GENERIC = AdapterHarness(ADAPTER)


def parse(name: str, adapter: GenericAdapter = ADAPTER) -> ParseResult:
    return adapter.parse(GENERIC.raw(name, provider=adapter.name))


def expected(message_id: str, status: Status, word: str, occurred_at: int, **overrides: Any) -> dict[str, Any]:
    """Every canonical field of a generic event."""
    return GENERIC.expected(status, word, message_id=message_id, occurred_at=occurred_at, **overrides)


CASES: dict[str, dict[str, Any]] = {
    "flat_delivered_iso.json": expected(
        "msg-001", Status.DELIVERED, "DELIVERED", 1_750_029_620_000, recipient="+55*********21", campaign="camp-9"
    ),
    "message_id_alternative.json": expected(
        "msg-002", Status.READ, "read", 1_750_030_030_000, recipient="551********21", campaign="camp-9"
    ),
    "failed_with_error.json": expected(
        "msg-003",
        Status.FAILED,
        "failed",
        1_750_030_040_000,
        failure_reason=FailureReason.ERROR,
        error_code="E42",
        error_title="Blocked by carrier",
    ),
    "rejected_flat_error.json": expected(
        "msg-004",
        Status.FAILED,
        "Rejected",
        1_750_030_041_000,
        failure_reason=FailureReason.REJECTED,
        error_code="7",
        error_title="Template paused",
    ),
    "number_not_found_underscores.json": expected(
        "msg-005", Status.FAILED, "Number_Not_Found", 1_750_030_042_000, failure_reason=FailureReason.NOT_FOUND
    ),
    "queued_no_time.json": expected("msg-006", Status.QUEUED, "queued", RECEIVED_AT, time_from_receipt=True),
}


@pytest.mark.parametrize(("name", "fields"), CASES.items(), ids=list(CASES))
def test_every_canonical_field(name: str, fields: dict[str, Any]) -> None:
    result = parse(name)
    (event,) = result.events
    assert event_fields(event) == fields
    assert result.ignored == 0
    assert result.channel_events == ()


def test_a_bare_list_is_a_batch() -> None:
    events = parse("list_body.json").events
    assert [(e.message_id, e.status, e.occurred_at) for e in events] == [
        ("msg-007", Status.SENT, 1_750_030_010_000),
        ("msg-008", Status.READ, 1_750_030_031_000),
    ]


@pytest.mark.parametrize(
    ("name", "detail", "occurred_at"),
    [
        ("channel_logout_event.json", "logout", 1_750_030_099_000),
        ("channel_connection_closed_status.json", "Connection Closed", 1_750_030_098_000),
    ],
)
def test_channel_words_are_channel_events_not_statuses(name: str, detail: str, occurred_at: int) -> None:
    result = parse(name)
    assert result.events == ()
    assert result.channel_events == (ChannelEvent("generic", "default", "logout", occurred_at, detail=detail),)


def test_ignored_words_are_counted_with_a_reason() -> None:
    result = parse("ignored_received.json")
    assert result.events == ()
    assert result.ignored_reasons == ("status 'received' ignored by configuration",)


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("unknown_status.json", r"body: status 'teleported' is not a known generic status"),
        ("missing_status.json", r"body has no status at 'status'"),
        ("missing_id.json", r"body has no message id at 'id', 'message_id'"),
        ("unreadable_timestamp.json", r"body\.timestamp is not a recognised time: 'yesterday at noon'"),
    ],
)
def test_unparseable_bodies_say_why(name: str, reason: str) -> None:
    assert re.search(reason, refusal(ADAPTER, GENERIC.raw(name)))


def test_a_scalar_in_a_list_is_rejected_alone() -> None:
    result = parse("list_with_scalar.json")
    assert [e.message_id for e in result.events] == ["msg-012"]
    assert [r.dead_letter_reason for r in result.rejected] == ["body[1] must be an object"]


@pytest.mark.parametrize("raw", [b"not json", b"3", b'"x"', b"{}"])
def test_garbage_is_unparseable(raw: bytes) -> None:
    with pytest.raises(UnparseableWebhook):
        ADAPTER.parse(raw_webhook("generic", raw))


# --- a provider described only by configuration -------------------------------------------------

CUSTOM_TOML = """
items_path = "data.results[*]"
message_id = "ref"
status = "state.name"
timestamp = "at"
error_code = "state.why.code"
error_title = "state.why.text"
recipient = "contact.msisdn"
campaign = "tags[0].campaign"
inherit = false
ignore = ["inbound"]

[statuses]
ok = "delivered"
bounced = { status = "failed" }

[error_reasons]
404 = "not_found"
"""


def custom_adapter() -> GenericAdapter:
    return GenericAdapter("acme", load_generic_config(tomllib.loads(CUSTOM_TOML)))


def test_a_provider_by_configuration_alone() -> None:
    result = parse("custom_nested_batch.json", custom_adapter())
    acme = {"provider": "acme"}
    assert [event_fields(e) for e in result.events] == [
        expected(
            "n-1",
            Status.DELIVERED,
            "OK",
            1_750_029_620_500,
            recipient="447*******23",
            campaign="spring",
            message_key="acme:default:n-1",
        )
        | acme,
        expected(
            "n-2",
            Status.FAILED,
            "bounced",
            1_750_030_040_000,
            failure_reason=FailureReason.NOT_FOUND,
            error_code="404",
            error_title="unknown subscriber",
            message_key="acme:default:n-2",
        )
        | acme,
    ]
    assert result.ignored_reasons == ("status 'inbound' ignored by configuration",)


def test_an_empty_batch_is_nothing_and_a_missing_batch_is_unparseable() -> None:
    assert parse("custom_nested_empty_batch.json", custom_adapter()) == ParseResult()
    with pytest.raises(UnparseableWebhook, match=r"body has nothing at 'data\.results\[\*\]'"):
        parse("flat_delivered_iso.json", custom_adapter())


def test_inherit_false_drops_the_base_words() -> None:
    config = load_generic_config(tomllib.loads(CUSTOM_TOML))
    assert set(config.statuses) == {"ok", "bounced"}
    assert config.channel_events == {}
    assert config.ignore == {"inbound"}


@pytest.mark.parametrize(
    ("path", "doc", "values"),
    [
        ("a.b.c", {"a": {"b": {"c": 1}}}, [1]),
        ("a.b", {"a": [1]}, []),
        ("items[*].id", {"items": [{"id": 1}, {"x": 2}, {"id": 3}]}, [1, 3]),
        ("items[1]", {"items": ["x", "y"]}, ["y"]),
        ("items[5]", {"items": ["x"]}, []),
        ("[*].id", [{"id": "a"}, {"id": "b"}], ["a", "b"]),
        ("m[*][0]", {"m": [[1, 2], [3]]}, [1, 3]),
    ],
)
def test_paths(path: str, doc: object, values: list[object]) -> None:
    assert JsonPath.parse(path).values(doc) == values


@pytest.mark.parametrize("path", ["", "a..b", "a.", "a[x]", "a[*", "a]b", "a[-1]"])
def test_bad_paths_are_refused(path: str) -> None:
    with pytest.raises(ValueError, match="path"):
        JsonPath.parse(path)


# --- configuration validation ----------------------------------------------------------------------


def test_overrides_merge_over_the_base() -> None:
    config = load_generic_config(
        {
            "message_id": ["uuid", "id"],
            "statuses": {"Received": "delivered", "Blocked": "failed:rejected"},
            "channel_events": {"qr code expired": "qr_expired"},
            "error_reasons": {"13": "expired"},
        }
    )
    assert config.message_id == ("uuid", "id")
    assert config.status == DEFAULT_CONFIG.status
    assert config.statuses["received"] == StatusRule(Status.DELIVERED)
    assert config.statuses["blocked"] == StatusRule(Status.FAILED, FailureReason.REJECTED)
    assert config.statuses["sent"] == StatusRule(Status.SENT)
    # `received` moved from the base's ignore list to a status.
    assert "received" not in config.ignore
    assert config.channel_events["qr code expired"] == "qr_expired"
    assert config.channel_events["logout"] == "logout"
    assert config.error_reasons == {"13": FailureReason.EXPIRED}


def test_error_reasons_refine_failures_without_a_word_reason() -> None:
    adapter = GenericAdapter("generic", load_generic_config({"error_reasons": {"E42": "rejected"}}))
    (event,) = parse("failed_with_error.json", adapter).events
    assert event.failure_reason is FailureReason.REJECTED


@pytest.mark.parametrize(
    ("mapping", "message"),
    [
        ({"mesage_id": "id"}, r"unknown key\(s\) \['mesage_id'\]"),
        ({"status": ""}, r"status: a path must not be empty"),
        ({"status": []}, r"status must be a path or a non-empty list of paths"),
        ({"message_id": 3}, r"message_id must be a path"),
        ({"timestamp": "a..b"}, r"timestamp: path 'a\.\.b' has an invalid part ''"),
        ({"items_path": 3}, r"items_path must be a path string"),
        ({"items_path": "x[y]"}, r"items_path: path 'x\[y\]' has an invalid part"),
        ({"statuses": {"ok": "arrived"}}, r"statuses\['ok'\]: 'arrived' is not a canonical status"),
        ({"statuses": {"ok": "failed:lost"}}, r"statuses\['ok'\]: 'lost' is not a failure reason"),
        ({"statuses": {"ok": "sent:rejected"}}, r"a reason only goes with failed, not 'sent'"),
        ({"statuses": {"ok": {"status": "sent", "why": "x"}}}, r"unknown key\(s\) \['why'\]"),
        ({"statuses": {"ok": 3}}, r"must be a status name or a table"),
        ({"statuses": ["ok"]}, r"statuses must be a table"),
        ({"statuses": {"  ": "sent"}}, r"statuses has an empty or non-text key"),
        ({"channel_events": {"logout": ""}}, r"channel_events\['logout'\] must name a channel event kind"),
        ({"ignore": "received"}, r"ignore must be a list of non-empty words"),
        ({"error_reasons": {"1": "gone"}}, r"error_reasons\['1'\]: 'gone' is not a failure reason"),
        ({"inherit": "no"}, r"inherit must be true or false"),
        ({"inherit": False}, r"statuses is empty"),
        (
            {"statuses": {"Logout": "failed"}, "channel_events": {"logout": "logout"}},
            r"\['logout'\] in both statuses and channel_events",
        ),
        ([("status", "x")], r"must be a table of keys, got list"),
    ],
)
def test_invalid_configuration_says_what_is_wrong(mapping: Any, message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        load_generic_config(mapping)


def test_config_built_in_code_is_validated_too() -> None:
    with pytest.raises(ConfigurationError, match=r"status: path 'a\.' has an invalid part"):
        GenericConfig(status=("a.",))
    with pytest.raises(ConfigurationError, match="has a reason but status 'read' is not failed"):
        GenericConfig(statuses={"x": StatusRule(Status.READ, FailureReason.ERROR)})
    with pytest.raises(ConfigurationError, match=r"in both statuses and ignore"):
        GenericConfig(statuses={"Sent": StatusRule(Status.SENT)}, ignore=frozenset({"sent"}))


def test_registered_with_the_default_config() -> None:
    adapter = adapter_for("generic")
    assert isinstance(adapter, GenericAdapter)
    assert adapter.config is DEFAULT_CONFIG
