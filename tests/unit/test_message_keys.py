"""A message is identified by provider, channel and the provider's id (issue 17, Identity).

Two customers of one deployment whose systems both number a message `42` must get two states,
two sets of changes and alerts, and no report of one may pass for a re-delivery of the other's.
"""

from __future__ import annotations

import argparse
import json
import logging

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from receiver.errors import Rejected
from receiver.routing import resolve
from schemas.channels import NAME_PATTERN, PROVIDERS
from schemas.codec import codec
from statusflow_cli.main import matches
from statusflow_consumer.records import parse_message_key as kit_parse_message_key
from streams.adapters.generic import GenericAdapter
from streams.adapters.gupshup import GupshupAdapter
from streams.adapters.salvage import message_keys
from streams.agents import _TrackIndexes
from streams.clock import now_ms
from streams.core.batches import plan_track
from streams.core.records import is_legacy_state, message_path, state_from_bytes, state_to_bytes
from streams.core.tracker import Outcome, track
from streams.domain.aliases import alias_told, canonical_id
from streams.domain.events import (
    MessageKey,
    StatusEvent,
    message_key,
    parse_legacy_message_key,
    parse_message_key,
)
from streams.domain.status import Status
from tests.factories import raw_webhook
from tests.fake_tables import fake_topology

CHANNELS = st.from_regex(NAME_PATTERN, fullmatch=True)


def generic_event(channel: str, status: str, message_id: str = "42", ts: int = 1_750_030_000) -> StatusEvent:
    body = json.dumps({"id": message_id, "status": status, "timestamp": str(ts)}).encode()
    (event,) = GenericAdapter("generic").parse(raw_webhook("generic", body, channel=channel)).events
    return event


# --- the key ---------------------------------------------------------------------------------


@given(st.sampled_from(PROVIDERS), CHANNELS, st.text(min_size=1))
def test_a_key_reads_back_into_its_parts_whatever_the_message_id_holds(
    provider: str, channel: str, message_id: str
) -> None:
    key = message_key(provider, channel, message_id)
    assert parse_message_key(key) == MessageKey(provider, channel, message_id)
    assert parse_message_key(key.encode()) == MessageKey(provider, channel, message_id)


def test_message_ids_with_colons_stay_whole() -> None:
    assert parse_message_key("twilio:acme-wa:whatsapp:+5511:9") == MessageKey("twilio", "acme-wa", "whatsapp:+5511:9")


@pytest.mark.parametrize("key", ["meta:wamid.1", "meta", "", "meta::x", ":default:x", "meta:default:"])
def test_what_is_not_a_key_of_three_parts_is_refused(key: str) -> None:
    with pytest.raises(ValueError, match="not a message key"):
        parse_message_key(key)


def test_the_consumer_kit_splits_a_key_as_the_pipeline_does() -> None:
    assert kit_parse_message_key("generic:acme-wa:42") == parse_message_key("generic:acme-wa:42")


def test_a_key_of_the_form_before_channels_reads_with_the_channel_kept_beside_it() -> None:
    assert parse_legacy_message_key(b"meta:wamid.1:x", "default") == MessageKey("meta", "default", "wamid.1:x")


def test_the_query_path_of_a_message_encodes_each_part() -> None:
    assert message_path(MessageKey("generic", "acme-wa", "42")) == "/messages/generic/acme-wa/42"
    assert message_path(MessageKey("generic", "acme-wa", "a/b?c"), "/history") == (
        "/messages/generic/acme-wa/a%2Fb%3Fc/history"
    )


@pytest.mark.parametrize("name", ["a:b", "Acme", "-x", "x" * 64, "acme\n"])
def test_development_mode_takes_only_names_a_channels_file_could_give(name: str) -> None:
    assert resolve("generic", "acme-wa", None).channel_name == "acme-wa"
    assert resolve("generic", None, None).channel_name == "default"
    with pytest.raises(Rejected) as refused:
        resolve("generic", name, None)
    assert refused.value.status == 404


# --- two channels, one message number ---------------------------------------------------------


def test_the_same_number_on_two_channels_is_two_messages_with_their_own_ids() -> None:
    acme, globex = generic_event("acme-wa", "sent"), generic_event("globex-wa", "sent")
    assert (acme.message_key, globex.message_key) == ("generic:acme-wa:42", "generic:globex-wa:42")
    # Same provider id, status and time: still two reports, not a re-delivery of one.
    assert acme.event_id != globex.event_id
    acme_change, globex_change = track(None, acme).change, track(None, globex).change
    assert acme_change is not None and globex_change is not None
    assert acme_change["change_id"] != globex_change["change_id"]
    assert (acme_change["message_key"], acme_change["channel"]) == ("generic:acme-wa:42", "acme-wa")


def test_a_batch_with_both_channels_tracks_two_states_and_neither_is_a_duplicate() -> None:
    events = [generic_event("acme-wa", "sent"), generic_event("globex-wa", "failed")]
    plan = plan_track(events, lambda _key: None, 60_000, at=now_ms())
    assert plan.outcomes == {"changed": 2}
    states = {key: state_from_bytes(key, value) for key, value in plan.writes.items()}
    assert {k: (s.channel, s.status) for k, s in states.items()} == {
        b"generic:acme-wa:42": ("acme-wa", Status.SENT),
        b"generic:globex-wa:42": ("globex-wa", Status.FAILED),
    }
    changes = [codec("status_change").decode(value) for _, value in plan.changes]
    assert sorted((c["channel"], c["status"]) for c in changes) == [("acme-wa", "sent"), ("globex-wa", "failed")]
    alerts = [codec("alert").decode(a) for _, v in plan.signals for a in codec("channel_signals").decode(v)["alerts"]]
    assert [(a["channel"], a["message_key"]) for a in alerts] == [("globex-wa", "generic:globex-wa:42")]


def test_a_redelivered_report_is_still_a_duplicate_on_its_channel() -> None:
    first = track(None, generic_event("acme-wa", "delivered"))
    again = track(first.state, generic_event("acme-wa", "delivered"))
    assert again.outcome is Outcome.DUPLICATE
    assert generic_event("acme-wa", "delivered").event_id == generic_event("acme-wa", "delivered").event_id


def test_aliases_are_channel_scoped() -> None:
    payload = {"id": "wamid.W", "gsId": "gs-1", "type": "sent", "payload": {"ts": 1_750_030_010}}
    body = json.dumps({"type": "message-event", "payload": payload, "timestamp": 1_750_030_010_000}).encode()
    told = {
        channel: alias_told(GupshupAdapter().parse(raw_webhook("gupshup", body, channel=channel)).events[0])
        for channel in ("acme-wa", "globex-wa")
    }
    assert told == {"acme-wa": "gupshup:acme-wa:wamid.W", "globex-wa": "gupshup:globex-wa:wamid.W"}
    assert canonical_id("gupshup:acme-wa:gs:1") == "gs:1"


def test_ids_read_from_a_dead_letter_carry_its_channel() -> None:
    raw = raw_webhook("generic", b'{"id": "42", "status": "in_orbit"}', channel="acme-wa")
    assert message_keys(raw) == ("generic:acme-wa:42",)


def test_tail_finds_a_message_by_its_key_or_its_id() -> None:
    record = {"schema": "status_change", "message_key": "twilio:acme-wa:whatsapp:9", "message_id": "whatsapp:9"}
    for asked in ("twilio:acme-wa:whatsapp:9", "whatsapp:9"):
        assert matches(record, argparse.Namespace(channel=None, message=asked, kind=None))
    audit = {"schema": "audit_record", "message_keys": ["twilio:acme-wa:whatsapp:9"]}
    assert matches(audit, argparse.Namespace(channel=None, message="whatsapp:9", kind=None))
    assert not matches(audit, argparse.Namespace(channel=None, message="acme-wa:whatsapp:9", kind=None))
    channel_alert = {"schema": "alert", "message_key": None}
    assert not matches(channel_alert, argparse.Namespace(channel=None, message="9", kind=None))


# --- states of the form before channels ------------------------------------------------------


def test_a_state_written_before_channels_reads_with_its_channel_from_the_value() -> None:
    state = track(None, generic_event("acme-wa", "read")).state
    current = state_to_bytes(state)
    assert not is_legacy_state(current)
    old = orjson.dumps([1, *orjson.loads(current)[1:]])  # what the release before wrote
    assert is_legacy_state(old)
    assert state_from_bytes(b"generic:42", old) == state


def test_a_worker_on_a_table_of_the_form_before_channels_names_the_upgrade(caplog: pytest.LogCaptureFixture) -> None:
    state = track(None, generic_event("acme-wa", "sent")).state
    old = orjson.dumps([1, *orjson.loads(state_to_bytes(state))[1:]])
    table = [(b"generic:42", old), (state.message_key.encode(), state_to_bytes(state))]
    indexes = _TrackIndexes(fake_topology().settings.retention())
    with caplog.at_level(logging.ERROR, logger="streams.agents"):
        indexes.sync({0}, lambda _partition: table)
    assert "partition 0 holds 1 message states keyed provider:message_id" in caplog.text
    assert "rebuild this app id's tables by replay" in caplog.text
