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


class AvroCodec:
    """Encoder and decoder of one record schema in single-object encoding."""

    __slots__ = ("_header", "_parsed", "name")

    def __init__(self, schema: dict[str, Any]) -> None:
        # Times travel as epoch-millisecond ints end to end: decoding logical types into
        # datetimes and back would cost per record and add nothing. The parsing canonical form
        # (and so the fingerprint) ignores logicalType, so readers that honour it still match.
        self._parsed = fastavro.parse_schema(_without_logical_types(schema))
        self.name: str = str(schema["name"])
        canonical = to_parsing_canonical_form(self._parsed)
        # fastavro returns the fingerprint's bytes in little-endian order as hex, which is
        # exactly the order the single-object header wants.
        self._header = MAGIC + bytes.fromhex(fingerprint(canonical, "CRC-64-AVRO"))

    @property
    def header(self) -> bytes:
        """The 10-byte single-object header of this schema."""
        return self._header

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
        """Decode bytes written by `encode` with this schema."""
        if data[:HEADER_SIZE] != self._header:
            msg = f"not a single-object {self.name} record (header {data[:HEADER_SIZE].hex()})"
            raise SchemaError(msg)
        try:
            record = fastavro.schemaless_reader(io.BytesIO(data[HEADER_SIZE:]), self._parsed, None)
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


@functools.cache
def codec(name: str) -> AvroCodec:
    """The shared codec of `schemas/<name>.avsc` (parsed once per process)."""
    return AvroCodec(load_schema_json(name))
