"""Builders of the audit and dead-letter records the agents publish (pure, deterministic ids)."""

from __future__ import annotations

import dataclasses

from schemas.codec import codec


@dataclasses.dataclass(frozen=True, slots=True)
class Source:
    """Where a consumed record came from."""

    topic: str
    partition: int
    offset: int


def audit_record(
    request_id: str,
    *,
    stage: str,
    provider: str,
    channel: str,
    outcome: str,
    at: int,
    detail: str | None = None,
    events_found: int = 0,
    events_ignored: int = 0,
    discriminator: str = "",
    message_keys: tuple[str, ...] | list[str] = (),
) -> bytes:
    """An AuditRecord; its id is the request, the stage and (for per-event audits) the event.

    `message_keys` names the messages the webhook concerns, so that one message's story can be
    found on wa.audit (`statusflow tail audit --message K`)."""
    return codec("audit_record").encode(
        {
            "audit_id": f"{request_id}:{stage}:{discriminator}",
            "request_id": request_id,
            "stage": stage,
            "provider": provider,
            "channel": channel,
            "at": at,
            "outcome": outcome,
            "http_status": None,
            "detail": detail,
            "events_found": events_found,
            "events_ignored": events_ignored,
            "payload_excerpt": None,
            "message_keys": list(message_keys),
        }
    )


def dead_letter_record(
    request_id: str, *, provider: str, channel: str, reason: str, source: Source, value: bytes, at: int
) -> bytes:
    """A DeadLetter carrying the source record's bytes unchanged, so it can be replayed."""
    return codec("dead_letter").encode(
        {
            "request_id": request_id,
            "provider": provider,
            "channel": channel,
            "reason": reason,
            "failed_at": at,
            "source_topic": source.topic,
            "source_partition": source.partition,
            "source_offset": source.offset,
            "raw": value,
        }
    )
