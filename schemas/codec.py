"""Avro single-object encoding (magic C3 01 + CRC-64-AVRO fingerprint + body) with fastavro.

Each schema is parsed once; encoding calls fastavro's schemaless writer per record, so a
consumer needs no registry: the fingerprint in the header names the schema.
"""

from __future__ import annotations

import functools
import io
import json
from importlib import resources
from typing import Any

import fastavro
from fastavro.schema import fingerprint, to_parsing_canonical_form

from schemas.errors import StatusflowError

MAGIC = b"\xc3\x01"
HEADER_SIZE = 10


class SchemaError(StatusflowError):
    """Bytes that do not carry the expected single-object Avro header or body."""


def load_schema_json(name: str) -> dict[str, Any]:
    """The JSON of `schemas/<name>.avsc` as shipped in the package."""
    text = resources.files("schemas").joinpath(f"{name}.avsc").read_text(encoding="utf-8")
    loaded: dict[str, Any] = json.loads(text)
    return loaded


def _fingerprint_header(parsed: Any) -> bytes:
    # fastavro returns the fingerprint's bytes in little-endian order as hex, which is
    # exactly the order the single-object header wants.
    return MAGIC + bytes.fromhex(fingerprint(to_parsing_canonical_form(parsed), "CRC-64-AVRO"))


class AvroCodec:
    """Encoder and decoder of one record schema in single-object encoding.

    Decoding also accepts records written with an earlier version of the schema (kept in
    `schemas/history/<name>.v<N>.avsc`): the header's fingerprint names the writer's schema and
    fastavro resolves it to the current one.
    """

    __slots__ = ("_header", "_older", "_parsed", "name")

    def __init__(self, schema: dict[str, Any], history: tuple[dict[str, Any], ...] = ()) -> None:
        # Times travel as epoch-millisecond ints end to end: decoding logical types into
        # datetimes and back would cost per record and add nothing. The parsing canonical form
        # (and so the fingerprint) ignores logicalType, so readers that honour it still match.
        self._parsed = fastavro.parse_schema(_without_logical_types(schema))
        self.name: str = str(schema["name"])
        self._header = _fingerprint_header(self._parsed)
        self._older: dict[bytes, Any] = {}
        for old in history:
            parsed_old = fastavro.parse_schema(_without_logical_types(old))
            self._older[_fingerprint_header(parsed_old)] = parsed_old

    @property
    def header(self) -> bytes:
        """The 10-byte single-object header of this schema."""
        return self._header

    def knows(self, header: bytes) -> bool:
        """True when `header` names this schema or one of its earlier versions."""
        return header == self._header or header in self._older

    def encode(self, record: dict[str, Any]) -> bytes:
        """Encode `record` with the header; raises SchemaError when it does not fit."""
        buf = io.BytesIO()
        buf.write(self._header)
        try:
            fastavro.schemaless_writer(buf, self._parsed, record)
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            msg = f"record does not fit schema {self.name}: {exc}"
            raise SchemaError(msg) from exc
        return buf.getvalue()

    def decode(self, data: bytes) -> dict[str, Any]:
        """Decode bytes written with this schema or one of its earlier versions."""
        header = data[:HEADER_SIZE]
        writer = self._parsed if header == self._header else self._older.get(header)
        if writer is None:
            if header[:2] != MAGIC:
                msg = f"not a single-object Avro record (starts {header[:2].hex()}), expected {self.name}"
            else:
                msg = f"unknown schema fingerprint {header[2:].hex()} for {self.name}"
            raise SchemaError(msg)
        reader = None if writer is self._parsed else self._parsed
        try:
            record = fastavro.schemaless_reader(io.BytesIO(data[HEADER_SIZE:]), writer, reader)
        except (EOFError, ValueError, TypeError, IndexError, UnicodeDecodeError) as exc:
            msg = f"corrupt {self.name} body: {exc}"
            raise SchemaError(msg) from exc
        if not isinstance(record, dict):
            msg = f"{self.name} body is not a record"
            raise SchemaError(msg)
        return record


def _without_logical_types(node: Any) -> Any:
    if isinstance(node, dict):
        return {k: _without_logical_types(v) for k, v in node.items() if k != "logicalType"}
    if isinstance(node, list):
        return [_without_logical_types(v) for v in node]
    return node


def load_history(name: str) -> tuple[dict[str, Any], ...]:
    """Earlier versions of a schema, oldest first."""
    folder = resources.files("schemas").joinpath("history")
    found = sorted(
        (entry for entry in folder.iterdir() if entry.name.startswith(f"{name}.v") and entry.name.endswith(".avsc")),
        key=lambda entry: int(entry.name.removeprefix(f"{name}.v").removesuffix(".avsc")),
    )
    return tuple(json.loads(entry.read_text(encoding="utf-8")) for entry in found)


# Every record schema of the contract, one per topic value (and MessageState for the query API).
SCHEMA_NAMES = (
    "raw_webhook",
    "status_event",
    "status_change",
    "message_state",
    "alert",
    "metric_window",
    "audit_record",
    "dead_letter",
    "status_event_bundle",
    "channel_signals",
    "cohort_funnel",
    "redrive",
    "parked_notification",
    "delivered_alert",
)


@functools.cache
def codec(name: str) -> AvroCodec:
    """The shared codec of `schemas/<name>.avsc` (parsed once per process)."""
    return AvroCodec(load_schema_json(name), load_history(name))


def decode_any(data: bytes) -> tuple[str, dict[str, Any]]:
    """(schema name, record) of any statusflow record, found by its fingerprint."""
    header = data[:HEADER_SIZE]
    for name in SCHEMA_NAMES:
        candidate = codec(name)
        if candidate.knows(header):
            return name, candidate.decode(data)
    msg = f"no statusflow schema has fingerprint {header[2:].hex()}"
    raise SchemaError(msg)
