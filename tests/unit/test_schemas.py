"""The Avro contracts: golden vectors, evolution, enum defaults, decoding by fingerprint.

A golden vector failing means a schema changed: copy the old .avsc to schemas/history/ with the
next version number, then regenerate the vectors with
`.venv/bin/python -m tests.unit.test_schemas` and commit both.
"""

from __future__ import annotations

import io
import json
import sys
from typing import Any

import fastavro
import pytest

from schemas.codec import SCHEMA_NAMES, SchemaError, codec, decode_any, load_history, load_schema_json
from tests.factories import FIXTURES

GOLDEN = FIXTURES / "golden"

# One representative record per schema: every optional field set, so every field is covered.
RECORDS: dict[str, dict[str, Any]] = {
    "raw_webhook": {
        "request_id": "6f1c",
        "provider": "meta",
        "channel": "shop-br",
        "received_at": 1_750_030_100_000,
        "content_type": "application/json",
        "method": "POST",
        "url": "https://hooks.example.test/webhooks/meta/shop-br",
        "headers": {"user-agent": "facebookexternalua"},
        "body": b'{"object":"whatsapp_business_account"}',
        "remote_addr": "127.0.0.1",
        "sniffed_from": "text/plain",
    },
    "status_event": {
        "event_id": "e1",
        "message_key": "meta:wamid.1",
        "provider": "meta",
        "channel": "shop-br",
        "message_id": "wamid.1",
        "status": "failed",
        "provider_status": "failed",
        "occurred_at": 1_750_030_073_000,
        "received_at": 1_750_030_100_000,
        "time_from_receipt": False,
        "request_id": "6f1c",
        "recipient": "165*****34",
        "campaign": "c-42",
        "failure_reason": "not_found",
        "error_code": "131026",
        "error_title": "Message undeliverable",
        "conversation_id": "conv",
        "pricing_category": "marketing",
        "correlation_id": None,
    },
    "status_change": {
        "change_id": "ch1",
        "message_key": "meta:wamid.1",
        "provider": "meta",
        "channel": "shop-br",
        "message_id": "wamid.1",
        "campaign": "c-42",
        "recipient": "165*****34",
        "previous_status": "sent",
        "status": "read",
        "event_id": "e2",
        "queued_at": None,
        "created_at": None,
        "sent_at": 1_750_030_073_000,
        "failed_at": None,
        "delivered_at": None,
        "read_at": 1_750_030_090_000,
        "delivered_implied": True,
        "failure_reason": None,
        "error_code": None,
        "error_title": None,
        "anomaly": False,
        "correlation_id": "gs-1",
    },
    "message_state": {
        "message_key": "meta:wamid.1",
        "provider": "meta",
        "channel": "shop-br",
        "message_id": "wamid.1",
        "campaign": "c-42",
        "recipient": "165*****34",
        "status": "delivered",
        "queued_at": None,
        "created_at": None,
        "sent_at": 1_750_030_073_000,
        "failed_at": 1_750_030_095_000,
        "delivered_at": 1_750_030_080_000,
        "read_at": None,
        "delivered_implied": False,
        "failure_reason": "error",
        "error_code": "131000",
        "error_title": "Something went wrong",
        "anomaly": True,
    },
    "alert": {
        "alert_id": "a1",
        "alert_key": "failure_rate_spike:shop-br",
        "kind": "failure_rate_spike",
        "severity": "critical",
        "state": "firing",
        "provider": "meta",
        "channel": "shop-br",
        "campaign": None,
        "message_key": None,
        "error_code": None,
        "error_title": None,
        "detail": "failure rate 40% over 5 min (threshold 20%)",
        "occurred_at": 1_750_030_100_000,
        "window_start": 1_750_029_800_000,
        "window_end": 1_750_030_100_000,
        "count": 120,
        "value": 0.4,
        "threshold": 0.2,
    },
    "metric_window": {
        "metric_id": "m1",
        "revision": 2,
        "scope": "campaign",
        "provider": "meta",
        "channel": "shop-br",
        "campaign": "c-42",
        "window_start": 1_750_030_040_000,
        "window_end": 1_750_030_100_000,
        "transitions": {"sent": 10, "delivered": 8, "read": 5, "failed": 1},
        "failures_by_reason": {"not_found": 1},
        "failures_by_code": {"131026": 1},
        "delivery_rate": 0.8,
        "read_rate": 0.625,
        "failure_rate": 1 / 11,
        "sent_to_delivered_ms": {"p50": 1200, "p90": 3400, "p99": 9000},
        "delivered_to_read_ms": {"p50": 60_000},
        "final": False,
    },
    "audit_record": {
        "audit_id": "6f1c:receiver:",
        "request_id": "6f1c",
        "stage": "receiver",
        "provider": "meta",
        "channel": "shop-br",
        "at": 1_750_030_100_000,
        "http_status": 401,
        "outcome": "rejected",
        "detail": "missing or wrong X-Hub-Signature-256",
        "events_found": 0,
        "events_ignored": 0,
        "payload_excerpt": '{"object":',
        "message_keys": ["meta:wamid.1"],
    },
    "status_event_bundle": {
        "events": [],
        "retire": ["meta:wamid.0"],
        "aliases": [{"alias": "gupshup:wamid.2", "canonical": "gupshup:gs-2", "at": 1_750_030_073_000}],
        "merges": [{"message_key": "gupshup:gs-2", "alias": "gupshup:wamid.2", "state": b"[1]", "history": None}],
        "notes": [
            {
                "message_key": "meta:wamid.3",
                "request_id": "6f1d",
                "received_at": 1_750_030_100_000,
                "provider_status": "in_orbit",
                "outcome": "dead_lettered",
                "detail": "statuses[0].status 'in_orbit' is not a known Meta status",
            }
        ],
    },
    "channel_signals": {
        "provider": "wpp",
        "channel": "store",
        "max_event_at": 1_750_030_100_000,
        "dead_letters": 2,
        "tick": False,
        "channel_events": [{"kind": "logout", "at": 1_750_030_000_000, "detail": "connection closed"}],
        "windows": [
            {
                "campaign": "c-42",
                "start": 1_750_030_040_000,
                "transitions": {"sent": 3},
                "failures_by_reason": {},
                "failures_by_code": {},
                "sent_to_delivered": [0, 1, 2],
                "delivered_to_read": [],
            }
        ],
        "alerts": [b"\xc3\x01alert"],
        "funnel": [{"campaign": "c-42", "cohort_start": 1_750_028_400_000, "counts": {"sent": -1, "delivered": 1}}],
    },
    "cohort_funnel": {
        "funnel_id": "f1",
        "revision": 3,
        "scope": "campaign",
        "provider": "aivo",
        "channel": "default",
        "campaign": "c-42",
        "cohort_start": 1_750_028_400_000,
        "cohort_end": 1_750_032_000_000,
        "attempted": 10,
        "delivered": 8,
        "delivered_implied": 2,
        "read": 6,
        "failed": 2,
        "expired": 0,
        "pending": 0,
        "pending_queued": 0,
        "pending_created": 0,
        "pending_sent": 0,
        "failures_by_reason": {"error": 2},
        "failures_by_code": {"1001": 2},
        "delivery_rate": 0.8,
        "read_rate": 0.75,
        "failure_rate": 0.2,
        "sent_to_delivered": [0, 0, 0, 6],
        "delivered_to_read": [2, 0, 0, 0, 4],
        "sent_to_delivered_ms": {"p50": 1_000, "p90": 1_000, "p99": 1_000},
        "delivered_to_read_ms": {"p50": 2_000, "p90": 2_000, "p99": 2_000},
    },
    "dead_letter": {
        "request_id": "6f1c",
        "provider": "meta",
        "channel": "shop-br",
        "reason": "statuses[0].status 'in_orbit' is not a known Meta status",
        "failed_at": 1_750_030_100_500,
        "source_topic": "wa.webhooks.raw",
        "source_partition": 3,
        "source_offset": 1234,
        "raw": b"\xc3\x01raw",
    },
    "redrive": {
        "request_id": "6f1c",
        "provider": "meta",
        "channel": "shop-br",
        "run_id": "20250615T202020Z-1a2b3c",
        "generation": 1,
        "redriven_at": 1_750_030_200_000,
        "reason": "statuses[0].status 'in_orbit' is not a known Meta status",
        "source_topic": "wa.webhooks.raw",
        "source_partition": 3,
        "source_offset": 1234,
        "sent_partition": 3,
        "sent_offset": 5678,
    },
    "parked_notification": {
        "sink": "ops-slack",
        "key": "group:meta:shop-br",
        "parked_at": 1_750_030_200_000,
        "reason": "http://hooks.example.test/ops answered 503: ",
        "alerts": [
            {
                "alert_id": "a2",
                "alert_key": "message_failed:meta:wamid.1",
                "kind": "message_failed",
                "severity": "warning",
                "state": "firing",
                "detail": "meta:wamid.1 failed (131026)",
                "occurred_at": 1_750_030_073_000,
                "provider": "meta",
                "channel": "shop-br",
                "campaign": "c-42",
                "message_key": "meta:wamid.1",
                "error_code": "131026",
                "error_title": "Message undeliverable",
                "count": 1,
                "value": 0.4,
                "threshold": 0.2,
                "tenant": "acme",
            }
        ],
    },
    "delivered_alert": {
        "sink": "ops-slack",
        "alert_id": "a2",
        "notification_id": "0f1e2d3c4b5a69788796a5b4",
        "delivered_at": 1_750_030_200_500,
    },
}


RECORDS["status_event_bundle"]["events"] = [RECORDS["status_event"]]


def test_every_schema_has_a_representative_record() -> None:
    assert set(RECORDS) == set(SCHEMA_NAMES)


@pytest.mark.parametrize("name", SCHEMA_NAMES)
def test_golden_vector_is_unchanged(name: str) -> None:
    golden = bytes.fromhex((GOLDEN / f"{name}.hex").read_text(encoding="utf-8").strip())
    assert codec(name).encode(RECORDS[name]) == golden, f"{name}.avsc changed: see this module's docstring"
    assert codec(name).decode(golden) == RECORDS[name]


@pytest.mark.parametrize("name", SCHEMA_NAMES)
def test_schema_is_documented_and_namespaced(name: str) -> None:
    schema = load_schema_json(name)
    assert schema["namespace"] == "io.statusflow"
    assert schema.get("doc")


@pytest.mark.parametrize(
    ("name", "version"),
    [(name, i) for name in SCHEMA_NAMES for i, _ in enumerate(load_history(name), start=1)],
)
def test_records_written_with_an_earlier_version_decode_with_the_current_one(name: str, version: int) -> None:
    old_schema = load_history(name)[version - 1]
    old_codec = type(codec(name))(old_schema)
    old_fields = {f["name"] for f in old_schema["fields"]}
    written = old_codec.encode({k: v for k, v in RECORDS[name].items() if k in old_fields})
    decoded = codec(name).decode(written)
    for field in load_schema_json(name)["fields"]:
        if field["name"] in old_fields:
            assert decoded[field["name"]] == RECORDS[name][field["name"]]
        else:
            assert decoded[field["name"]] == field["default"], f"new field {field['name']} needs a default"


def test_status_change_has_a_real_earlier_version() -> None:
    # v1 was published by the first release; v2 added recipient and correlation_id.
    assert len(load_history("status_change")) >= 1


def test_enum_default_lets_old_readers_read_new_symbols() -> None:
    # A writer that knows a newer alert kind; a reader of today falls back to the default.
    newer = json.loads(json.dumps(load_schema_json("alert")))
    kind = next(f for f in newer["fields"] if f["name"] == "kind")
    kind["type"]["symbols"].append("brand_new_kind")
    record = {**RECORDS["alert"], "kind": "brand_new_kind"}
    buf = io.BytesIO()
    fastavro.schemaless_writer(buf, fastavro.parse_schema(newer), record)
    buf.seek(0)
    read = fastavro.schemaless_reader(
        buf, fastavro.parse_schema(newer), fastavro.parse_schema(load_schema_json("alert"))
    )
    assert isinstance(read, dict)
    assert read["kind"] == "unknown"


def test_decode_any_finds_the_schema_by_fingerprint() -> None:
    for name in SCHEMA_NAMES:
        assert decode_any(codec(name).encode(RECORDS[name])) == (name, RECORDS[name])


def test_unknown_fingerprint_is_a_clear_error() -> None:
    data = b"\xc3\x01" + b"\x00" * 8 + b"body"
    with pytest.raises(SchemaError, match="fingerprint 0000000000000000"):
        decode_any(data)
    with pytest.raises(SchemaError, match="unknown schema fingerprint"):
        codec("alert").decode(data)


def _regenerate() -> None:
    GOLDEN.mkdir(parents=True, exist_ok=True)
    for name in SCHEMA_NAMES:
        (GOLDEN / f"{name}.hex").write_text(codec(name).encode(RECORDS[name]).hex() + "\n", encoding="utf-8")
        sys.stdout.write(f"wrote {name}.hex\n")


if __name__ == "__main__":
    _regenerate()
