"""The single-object Avro codec every consumer relies on."""

from __future__ import annotations

import pytest

from schemas.codec import MAGIC, SchemaError, codec
from schemas.envelope import RawWebhook

SCHEMAS = ["raw_webhook", "status_event", "status_change", "dead_letter", "audit_record"]

# CRC-64-AVRO as the Avro specification defines it, written out independently of fastavro.
_EMPTY = 0xC15D213AA4D7A795


def _crc64_avro(data: bytes) -> int:
    table = []
    for i in range(256):
        fp = i
        for _ in range(8):
            fp = (fp >> 1) ^ (_EMPTY & -(fp & 1))
        table.append(fp)
    fp = _EMPTY
    for byte in data:
        fp = (fp >> 8) ^ table[(fp ^ byte) & 0xFF]
    return fp


@pytest.mark.parametrize("name", SCHEMAS)
def test_header_is_magic_plus_little_endian_fingerprint(name: str) -> None:
    from fastavro.schema import parse_schema, to_parsing_canonical_form

    from schemas.codec import load_schema_json

    canonical = to_parsing_canonical_form(parse_schema(load_schema_json(name)))
    expected = MAGIC + _crc64_avro(canonical.encode()).to_bytes(8, "little")
    assert codec(name).header == expected


def test_raw_webhook_round_trips_byte_for_byte() -> None:
    raw = RawWebhook(
        request_id="r",
        provider="meta",
        channel="c",
        received_at=1_700_000_000_123,
        content_type="application/json",
        url="http://x/webhooks/meta/c",
        body=b"\x00\xffbinary-safe",
        headers={"user-agent": "facebookexternalua"},
        remote_addr="127.0.0.1",
    )
    assert RawWebhook.from_avro(raw.to_avro()) == raw


def test_decoding_foreign_bytes_names_the_schema() -> None:
    with pytest.raises(SchemaError, match="RawWebhook"):
        codec("raw_webhook").decode(b'{"json": "not avro"}')


def test_truncated_body_is_a_schema_error() -> None:
    data = codec("dead_letter").encode(
        {
            "request_id": "r",
            "provider": "p",
            "channel": "c",
            "reason": "x",
            "failed_at": 1,
            "source_topic": "t",
            "source_partition": 0,
            "source_offset": 1,
            "raw": b"abc",
        }
    )
    with pytest.raises(SchemaError):
        codec("dead_letter").decode(data[:-3])


def test_record_that_does_not_fit_is_refused() -> None:
    with pytest.raises(SchemaError, match="AuditRecord"):
        codec("audit_record").encode({"audit_id": 5})
