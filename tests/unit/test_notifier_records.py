"""The notifier's own topics: Avro records like every statusflow topic, and the JSON (parking) and
bare-key (ledger) records that notifiers before them wrote, which an upgraded notifier still reads."""

from __future__ import annotations

import pytest

from notifier import parking
from notifier.alerts import Alert
from notifier.dedup import Delivered, ledger_entry, ledger_records
from notifier.grouping import Notification
from notifier.settings import NotifySettings
from schemas.codec import MAGIC, codec, load_schema_json
from schemas.settings import KafkaSettings, TopicNames
from schemas.topics import TOPIC_CONFIGS, topic_specs
from statusflow_consumer import TOPIC_SCHEMAS, decode

FAILED = Alert(
    alert_id="m1",
    alert_key="message_failed:meta:wamid.m1",
    kind="message_failed",
    severity="warning",
    state="firing",
    detail="meta:wamid.m1 message failed (code 131026)",
    occurred_at=1_700_000_000_000,
    provider="meta",
    channel="sales",
    message_key="meta:wamid.m1",
    error_code="131026",
)

# A parking record exactly as the notifier wrote it before its topics were Avro.
LEGACY_PARKED = (
    b'{"sink":"webhook","key":"group:meta:sales","parked_at":1700000005000,'
    b'"reason":"http://127.0.0.1:9/hook answered 503: ","alerts":[{"alert_id":"m1",'
    b'"alert_key":"message_failed:meta:wamid.m1","kind":"message_failed","severity":"warning",'
    b'"state":"firing","detail":"meta:wamid.m1 message failed (code 131026)","occurred_at":1700000000000,'
    b'"provider":"meta","channel":"sales","campaign":null,"message_key":"meta:wamid.m1","error_code":"131026",'
    b'"error_title":null,"count":1,"value":null,"threshold":null,"tenant":null}]}'
)


# --- parking ------------------------------------------------------------------------------------


def test_parked_notifications_are_avro_single_object_records() -> None:
    notification = Notification(sink="ops-slack", key="group:meta:sales", alerts=(FAILED,), refs=((0, 1),))
    value = parking.encode(notification, 1_700_000_005_000, "sink down")
    assert value.startswith(codec("parked_notification").header)
    record = codec("parked_notification").decode(value)
    assert (record["sink"], record["reason"], record["parked_at"]) == ("ops-slack", "sink down", 1_700_000_005_000)
    back = parking.decode(value)
    assert (back.sink, back.key, back.alerts) == ("ops-slack", "group:meta:sales", (FAILED,))


def test_json_parked_by_an_earlier_notifier_is_still_redelivered() -> None:
    assert not LEGACY_PARKED.startswith(MAGIC)
    back = parking.decode(LEGACY_PARKED)
    assert (back.sink, back.key, back.alerts) == ("webhook", "group:meta:sales", (FAILED,))
    # The same notification, so the same id: a sink that dedups on it sees one notification.
    assert (
        back.notification_id == Notification(sink="webhook", key="group:meta:sales", alerts=(FAILED,)).notification_id
    )


@pytest.mark.parametrize(
    "value",
    [b"", b"\xc3\x01" + b"\x00" * 8 + b"body", codec("alert").header + b"\x00", b"not json", b"[1, 2]", b"1"],
)
def test_what_is_not_a_parked_notification_is_a_value_error(value: bytes) -> None:
    with pytest.raises(ValueError, match="not a parked notification"):
        parking.decode(value)


def test_the_parked_alert_schema_carries_every_alert_field() -> None:
    # Parking must not drop what a notification shows: the schema and the Alert move together.
    parked = load_schema_json("parked_notification")
    items = next(field for field in parked["fields"] if field["name"] == "alerts")["type"]["items"]
    assert [field["name"] for field in items["fields"]] == list(FAILED.to_dict())


# --- the dedup ledger ---------------------------------------------------------------------------


def test_ledger_records_are_avro_and_keyed_by_sink_and_alert() -> None:
    second = Alert(**{**FAILED.to_dict(), "alert_id": "m2"})
    notification = Notification(sink="ops-slack", key="group:meta:sales", alerts=(FAILED, second))
    records = ledger_records(notification, 1_700_000_009_000)
    assert [key for key, _ in records] == [b"ops-slack|m1", b"ops-slack|m2"]
    first = codec("delivered_alert").decode(records[0][1])
    assert first == {
        "sink": "ops-slack",
        "alert_id": "m1",
        "notification_id": notification.notification_id,
        "delivered_at": 1_700_000_009_000,
    }
    delivered = Delivered()
    assert all(delivered.fold(key, value) for key, value in records)
    assert delivered.knows("ops-slack", "m1") and delivered.knows("ops-slack", "m2")
    assert not delivered.knows("webhook", "m1")


def test_a_ledger_written_before_avro_keeps_deduplicating() -> None:
    # Earlier notifiers wrote the value b"1" and said everything in the key.
    assert ledger_entry(b"webhook|m1", b"1") == ("webhook", "m1")
    delivered = Delivered()
    assert delivered.fold(b"webhook|m1", b"1")
    assert delivered.knows("webhook", "m1")


def test_an_avro_value_this_notifier_cannot_read_falls_back_to_the_key() -> None:
    newer = b"\xc3\x01" + b"\x07" * 8 + b"a newer schema's body"
    assert ledger_entry(b"ops-slack|m1", newer) == ("ops-slack", "m1")


def test_a_tombstone_forgets_and_a_stray_record_is_ignored() -> None:
    delivered = Delivered()
    (key, value), *_ = ledger_records(Notification(sink="email", key="alert:m1", alerts=(FAILED,)), 1)
    assert delivered.fold(key, value)
    assert delivered.fold(key, None)
    assert not delivered.knows("email", "m1")
    assert not delivered.fold(b"no separator", b"1")
    assert not delivered.fold(None, b"1")
    assert not delivered.fold(b"\xff\xfe", b"1")


# --- topic names and the contract ---------------------------------------------------------------


def test_the_notifier_topics_are_contract_roles_named_after_the_alerts_topic(monkeypatch: pytest.MonkeyPatch) -> None:
    names = TopicNames()
    assert (names.alerts_parked, names.alerts_delivered) == ("wa.alerts.parked", "wa.alerts.delivered")
    # A deployment that renamed its alerts topic finds its parked work and ledger where they were.
    monkeypatch.setenv("STATUSFLOW_TOPIC_ALERTS", "acme.alerts")
    assert TopicNames().alerts_parked == "acme.alerts.parked"
    monkeypatch.setenv("STATUSFLOW_TOPIC_ALERTS_DELIVERED", "acme.ledger")
    assert TopicNames().alerts_delivered == "acme.ledger"
    assert NotifySettings().delivered() == "acme.ledger" and NotifySettings().parked() == "acme.alerts.parked"
    # The notifier's older variables still win.
    monkeypatch.setenv("STATUSFLOW_NOTIFY_PARKED_TOPIC", "old.parked")
    assert NotifySettings().parked() == "old.parked"
    prefixed = TopicNames().prefixed("t1.")
    assert (prefixed.alerts_parked, prefixed.alerts_delivered) == ("t1.acme.alerts.parked", "t1.acme.ledger")


def test_the_notifier_topics_are_created_with_the_contract_and_decodable_by_role() -> None:
    specs = {spec.name: spec for spec in topic_specs(KafkaSettings())}
    assert specs["wa.alerts.delivered"].topic_configs["cleanup.policy"] == "compact,delete"
    assert specs["wa.alerts.parked"].topic_configs["cleanup.policy"] == "delete"
    assert {"alerts_parked", "alerts_delivered"} <= set(TOPIC_CONFIGS)
    assert TOPIC_SCHEMAS["alerts_parked"] == "parked_notification"
    assert TOPIC_SCHEMAS["alerts_delivered"] == "delivered_alert"
    value = parking.encode(Notification(sink="webhook", key="alert:m1", alerts=(FAILED,)), 5, "down")
    assert decode(value).schema == "parked_notification"
