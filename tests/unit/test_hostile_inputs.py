"""Hostile input through every adapter, the codec and the whole normalize plan (issue 8).

The invariant is `devkit.fuzz.check_webhook` / `check_record`, the same one the long campaign
(`make fuzz`) runs a million times: only UnparseableWebhook or SchemaError may be raised, and a
raw envelope always ends as encodable events or a dead-letter reason with its audit record.
This is the one never-crash suite: arbitrary JSON drawn from each provider's own keys (those of
its fixtures) with hostile scalars, deep nesting, damaged bytes, enormous arrays, form bodies,
the codec, and the crashers the campaign found. The adapters' own tests keep only the
properties that say more than "no crash" (a report per item, a form's nesting).
"""

from __future__ import annotations

import base64
import json
from pathlib import Path

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from devkit.fuzz import FORM_PROVIDERS, check_record, check_webhook, load_fixtures
from schemas.codec import SCHEMA_NAMES, codec
from streams.adapters._fields import MAX_EPOCH_MS
from streams.adapters.registry import ADAPTERS
from tests.factories import FIXTURES, raw_webhook

PROVIDERS = sorted(ADAPTERS)
BODIES = load_fixtures()
CRASHERS = sorted((FIXTURES / "crashers").glob("*.json"))

# Scalars that broke or could break a parser: 64-bit edges, bignums, non-finite floats, lone
# surrogates, times past the year 9999, empty and blank strings.
HOSTILE_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.sampled_from([2**63, -(2**63) - 1, 2**64, 10**30, MAX_EPOCH_MS + 1])
    | st.floats()
    | st.text()
    | st.sampled_from(["", " ", "\x00", "9" * 40, "9999-12-31T23:59:59Z", "2025-06-16T01:02:03", "whatsapp:"])
)


def _keys(provider: str) -> list[str]:
    found: set[str] = set()

    def walk(node: object) -> None:
        if isinstance(node, dict):
            found.update(node)
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    for body in BODIES[provider]:
        try:
            walk(orjson.loads(body))
        except orjson.JSONDecodeError:
            continue
    return sorted(found) or ["id", "status"]


KEYS = {provider: _keys(provider) for provider in PROVIDERS}


def _documents(provider: str) -> st.SearchStrategy[object]:
    words = st.sampled_from(KEYS[provider]) | st.text(max_size=6)
    return st.recursive(
        HOSTILE_SCALARS,
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(words, inner, max_size=6),
        max_leaves=30,
    )


def _dumps(doc: object) -> bytes:
    # The json module writes NaN, Infinity and lone surrogates: bytes a hostile sender can send.
    return json.dumps(doc).encode("utf-8", "surrogatepass")


@pytest.mark.parametrize("provider", PROVIDERS)
@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_arbitrary_json_with_hostile_values_is_events_or_a_dead_letter(provider: str, data: st.DataObject) -> None:
    body = _dumps(data.draw(_documents(provider)))
    assert check_webhook(provider, body) in {"events", "ignored", "dead_letter", "partial"}


@pytest.mark.parametrize("provider", PROVIDERS)
@settings(max_examples=60)
@given(data=st.data())
def test_truncated_and_damaged_fixture_bodies_never_crash(provider: str, data: st.DataObject) -> None:
    body = data.draw(st.sampled_from(BODIES[provider]))
    cut = data.draw(st.integers(0, len(body)))
    at = data.draw(st.integers(0, cut))
    junk = data.draw(st.sampled_from([b"", b"\xff", b"\xc3", b"\xed\xa0\x80", b"\x00", b'"', b"\\u"]))
    assert check_webhook(provider, body[:at] + junk + body[at:cut]) in {"events", "ignored", "dead_letter", "partial"}


@pytest.mark.parametrize("provider", PROVIDERS)
def test_nesting_deeper_than_any_parser_recursion_is_a_dead_letter(provider: str) -> None:
    deep = b"[" * 100_000 + b"]" * 100_000
    nested = b'{"entry":' * 5000 + b"1" + b"}" * 5000
    assert check_webhook(provider, deep) == "dead_letter"
    assert check_webhook(provider, nested) == "dead_letter"


@pytest.mark.parametrize("provider", PROVIDERS)
def test_invalid_utf8_body_is_a_dead_letter(provider: str) -> None:
    assert check_webhook(provider, b'{"id": "\xff\xfe", "status": "sent"}') == "dead_letter"


def test_an_enormous_statuses_array_becomes_one_event_per_status() -> None:
    status = {"id": "wamid.X", "status": "delivered", "timestamp": "1750030000", "recipient_id": "5511987654321"}
    statuses = [dict(status, id=f"wamid.{i}") for i in range(10_000)]
    body = orjson.dumps({"entry": [{"changes": [{"value": {"statuses": statuses}}]}]})
    assert len(body) < 1024 * 1024  # what the receiver lets through
    assert check_webhook("meta", body) == "events"
    assert len(ADAPTERS["meta"].parse(raw_webhook("meta", body)).events) == 10_000


def test_a_huge_timestamp_is_refused_not_a_poison_pill() -> None:
    # Found by the campaign: 1e300 became an int that no Avro long holds, and the whole
    # normalize batch (every webhook in it) failed to encode, on every restart.
    body = b'{"entry":[{"changes":[{"value":{"statuses":[{"id":"x","status":"sent","timestamp":1e300}]}}]}]}'
    assert check_webhook("meta", body) == "dead_letter"
    assert check_webhook("meta", body.replace(b"1e300", str(MAX_EPOCH_MS).encode())) == "events"


@pytest.mark.parametrize("provider", sorted(FORM_PROVIDERS))
@settings(max_examples=100)
@given(
    pairs=st.lists(st.tuples(st.text(max_size=12), st.text(max_size=20)), max_size=8),
    tail=st.sampled_from(["", "&", "%", "%zz", "%ff", "=x", "&&a"]),
)
def test_form_bodies_never_crash(provider: str, pairs: list[tuple[str, str]], tail: str) -> None:
    from urllib.parse import urlencode

    body = (urlencode(pairs, errors="surrogatepass") + tail).encode("ascii")
    outcome = check_webhook(provider, body, "application/x-www-form-urlencoded")
    assert outcome in {"events", "ignored", "dead_letter", "partial"}


@pytest.mark.parametrize("path", CRASHERS, ids=[p.stem for p in CRASHERS])
def test_crashers_found_by_the_campaign_stay_fixed(path: Path) -> None:
    case = json.loads(path.read_text(encoding="utf-8"))
    payload = base64.b64decode(case["input_b64"])
    target: str = case["target"]
    if target.startswith("codec:"):
        assert check_record(payload, target.removeprefix("codec:")) == case["expected"]
    else:
        assert check_webhook(target, payload, case["content_type"]) == case["expected"]


def test_there_are_crasher_regression_fixtures() -> None:
    assert CRASHERS, "tests/fixtures/crashers/ holds the campaign's finds"


# ------------------------------------------------------------------------------------------- codec

RECORDS = [("raw_webhook", raw_webhook("meta", BODIES["meta"][0]).to_avro())] + [
    (name, bytes.fromhex((FIXTURES / "golden" / f"{name}.hex").read_text(encoding="ascii").strip()))
    for name in SCHEMA_NAMES
]


@settings(max_examples=300)
@given(data=st.binary(max_size=200), name=st.sampled_from(SCHEMA_NAMES))
def test_arbitrary_bytes_decode_to_a_record_or_a_schema_error(data: bytes, name: str) -> None:
    assert check_record(data, name) in {"record", "schema_error"}


@settings(max_examples=300)
@given(data=st.data())
def test_truncated_single_object_records_are_schema_errors(data: st.DataObject) -> None:
    name, record = data.draw(st.sampled_from(RECORDS))
    cut = data.draw(st.integers(0, len(record) - 1))
    assert check_record(record[:cut], name) in {"record", "schema_error"}
    if cut < 10:  # not even a header
        assert check_record(record[:cut], name) == "schema_error"


@settings(max_examples=200)
@given(data=st.data())
def test_a_body_under_another_schemas_fingerprint_never_crashes(data: st.DataObject) -> None:
    name, record = data.draw(st.sampled_from(RECORDS))
    other = data.draw(st.sampled_from(SCHEMA_NAMES))
    assert check_record(codec(other).header + record[10:], name) in {"record", "schema_error"}


@settings(max_examples=200)
@given(data=st.data())
def test_bodies_with_blown_up_lengths_are_schema_errors(data: st.DataObject) -> None:
    name, record = data.draw(st.sampled_from(RECORDS))
    at = data.draw(st.integers(10, len(record)))
    varint = data.draw(st.sampled_from([b"\xfe\xff\xff\xff\x0f", b"\xff\xff\xff\xff\xff\xff\xff\xff\x7f"]))
    assert check_record(record[:at] + varint + record[at:], name) in {"record", "schema_error"}


def test_an_unknown_fingerprint_is_named_in_the_error() -> None:
    from schemas.codec import SchemaError, decode_any

    with pytest.raises(SchemaError, match="fingerprint"):
        decode_any(b"\xc3\x01" + b"\x00" * 8 + b"\x02")
    assert check_record(b"\xc3\x01" + b"\x00" * 8 + b"\x02") == "schema_error"
