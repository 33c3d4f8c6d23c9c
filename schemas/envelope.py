"""The raw webhook envelope: the receiver writes it, every other stage reads it."""

from __future__ import annotations

import dataclasses
from typing import Any

from schemas.codec import codec


@dataclasses.dataclass(frozen=True, slots=True)
class RawWebhook:
    """One accepted webhook exactly as it came (DESIGN.md: the source of truth)."""

    request_id: str
    provider: str
    channel: str
    received_at: int
    content_type: str
    url: str
    body: bytes
    headers: dict[str, str] = dataclasses.field(default_factory=dict)
    method: str = "POST"
    remote_addr: str | None = None

    def to_avro(self) -> bytes:
        """Single-object Avro bytes of this envelope."""
        return codec("raw_webhook").encode({f: getattr(self, f) for f in _FIELDS})

    @classmethod
    def from_avro(cls, data: bytes) -> RawWebhook:
        """Decode an envelope; raises schemas.codec.SchemaError on foreign bytes."""
        record: dict[str, Any] = codec("raw_webhook").decode(data)
        return cls(**record)


_FIELDS = tuple(f.name for f in dataclasses.fields(RawWebhook))
