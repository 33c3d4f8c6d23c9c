"""The raw webhook envelope: the receiver writes it, every other stage reads it."""

from __future__ import annotations

import dataclasses
from typing import Any

from schemas.codec import codec

# Headers `statusflow redrive` adds to an envelope it re-publishes (the receiver keeps only the
# headers it chooses, so a provider cannot send these): how many times the webhook has been
# redriven, and the run that sent it. Everything else, the request id and body included, stays
# as received, so every id derived from the webhook is the same as on its first attempt.
REDRIVE_HEADER = "x-statusflow-redrive"
REDRIVE_RUN_HEADER = "x-statusflow-redrive-run"


@dataclasses.dataclass(frozen=True, slots=True)
class RawWebhook:
    """One accepted webhook exactly as it came (docs/architecture.md: the source of truth)."""

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
    # The Content-Type header as sent when `content_type` was sniffed from the body instead
    # ("" when there was none); None when `content_type` is the header's own.
    sniffed_from: str | None = None

    @property
    def redrive_generation(self) -> int:
        """How many times this envelope has been redriven (0: as the receiver wrote it)."""
        value = self.headers.get(REDRIVE_HEADER, "")
        return int(value) if value.isascii() and value.isdigit() else 0

    def to_avro(self) -> bytes:
        """Single-object Avro bytes of this envelope."""
        return codec("raw_webhook").encode({f: getattr(self, f) for f in _FIELDS})

    @classmethod
    def from_avro(cls, data: bytes) -> RawWebhook:
        """Decode an envelope; raises schemas.codec.SchemaError on foreign bytes."""
        record: dict[str, Any] = codec("raw_webhook").decode(data)
        return cls(**record)


_FIELDS = tuple(f.name for f in dataclasses.fields(RawWebhook))
