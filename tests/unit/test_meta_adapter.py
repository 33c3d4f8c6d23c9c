"""Meta Cloud API statuses → canonical events."""

from __future__ import annotations

import re

import pytest

from streams.adapters.meta import MetaAdapter
from streams.core.normalizer import normalize
from streams.domain.status import FailureReason, Status
from tests.adapter_harness import AdapterHarness
from tests.factories import raw_webhook, refusal

ADAPTER = MetaAdapter()
META = AdapterHarness(ADAPTER)
parse = META.parse


@pytest.mark.parametrize(
    ("name", "status"),
    [("status_sent.json", Status.SENT), ("status_delivered.json", Status.DELIVERED), ("status_read.json", Status.READ)],
)
def test_each_status_word(name: str, status: Status) -> None:
    (event,) = parse(name).events
    assert event.status is status
    assert event.message_id == "wamid.HBgLMTY1MDM4Nzk0MzkVAgARGBJDQjZCMzlEQUE4OTJBMTE4RTUA"
    assert event.message_key.startswith("meta:default:wamid.")
    assert event.occurred_at % 1000 == 0 and event.occurred_at > 1_750_000_000_000


def test_sent_carries_campaign_conversation_pricing_and_masks_the_number() -> None:
    (event,) = parse("status_sent.json").events
    assert event.campaign == "campaign-42"
    assert event.conversation_id == "6ceb9d929c1a3bb6fa45c4eb4e5c3a0c"
    assert event.pricing_category == "marketing"
    assert event.recipient is not None and "5551234" in event.recipient  # as sent: normalize masks it
    (published,) = normalize(META.raw("status_sent.json").to_avro()).events
    assert published.recipient is not None and "5551234" not in published.recipient


def test_failure_keeps_code_and_title_and_maps_not_on_whatsapp() -> None:
    (event,) = parse("status_failed_not_on_whatsapp.json").events
    assert event.status is Status.FAILED
    assert event.failure_reason is FailureReason.NOT_FOUND
    assert event.error_code == "131026"
    assert event.error_title == "Message undeliverable"


def test_several_entries_and_statuses_in_one_post() -> None:
    events = parse("batch_two_entries.json").events
    assert [(e.message_id, e.status) for e in events] == [
        ("wamid.A", Status.SENT),
        ("wamid.B", Status.DELIVERED),
        ("wamid.C", Status.READ),
    ]


def test_inbound_messages_are_ignored_not_errors() -> None:
    result = parse("inbound_message_only.json")
    assert result.events == ()
    assert result.ignored == 1


def test_missing_timestamp_falls_back_to_receipt_and_is_flagged() -> None:
    (event,) = parse("missing_timestamp.json").events
    assert event.occurred_at == event.received_at == 1_750_030_100_000
    assert event.time_from_receipt


def test_unreadable_timestamp_is_unparseable_with_the_path() -> None:
    body = b'{"entry":[{"changes":[{"value":{"statuses":[{"id":"x","status":"sent","timestamp":"yesterday"}]}}]}]}'
    assert re.search(r"statuses\[0\]\.timestamp", refusal(ADAPTER, raw_webhook("meta", body)))


@pytest.mark.parametrize(
    "body", [b"not json", b"[]", b"{}", b'{"entry": "x"}', b'{"entry":[{"changes":[{"value":3}]}]}']
)
def test_garbage_is_unparseable(body: bytes) -> None:
    assert refusal(ADAPTER, raw_webhook("meta", body))


def test_event_id_is_deterministic_and_distinguishes_statuses() -> None:
    a = parse("status_sent.json").events[0]
    b = parse("status_sent.json").events[0]
    c = parse("status_delivered.json").events[0]
    assert a.event_id == b.event_id
    assert a.event_id != c.event_id
