"""A message's history: the webhooks that concerned it, in arrival order, bounded.

Each entry is one report of one webhook about one message (a webhook carrying two statuses of
the same message gives two entries) with what it did: changed, duplicate, stale, or
dead_lettered when the webhook could not be normalised but its message id could be read.

Entries are kept sorted by arrival (`received_at`, then request id, then event id) and
identified by request id + event id, so re-processing a batch after a crash adds nothing and
two histories of one message (tracked under two ids before they were correlated) join into the
same list whatever the order. Only the newest `limit` entries are kept: the table value of a
message that is re-sent in a loop stays bounded.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from typing import Any

import orjson

from streams.domain.events import StatusEvent

#: Entries kept per message by default (STATUSFLOW_HISTORY_LIMIT).
DEFAULT_LIMIT = 50

DEAD_LETTERED = "dead_lettered"

_VERSION = 1


@dataclasses.dataclass(frozen=True, slots=True)
class Entry:
    """One webhook's report about one message."""

    received_at: int
    request_id: str
    event_id: str  # "" for a webhook without a parsed event (a dead letter)
    provider_status: str | None
    status: str | None  # the canonical status of the report, None for a dead letter
    outcome: str
    detail: str | None = None  # why it was dead-lettered, or the id it arrived under

    @property
    def identity(self) -> tuple[str, str]:
        """What makes two entries the same report of the same webhook."""
        return (self.request_id, self.event_id)

    @property
    def order(self) -> tuple[int, str, str]:
        """Arrival order, total so that the kept list does not depend on processing order."""
        return (self.received_at, self.request_id, self.event_id)


def event_entry(event: StatusEvent, outcome: str, detail: str | None = None) -> Entry:
    """The entry of a tracked event."""
    return Entry(
        received_at=event.received_at,
        request_id=event.request_id,
        event_id=event.event_id,
        provider_status=event.provider_status,
        status=event.status.value,
        outcome=outcome,
        detail=detail,
    )


def add(history: Iterable[Entry], entries: Iterable[Entry], limit: int = DEFAULT_LIMIT) -> tuple[Entry, ...]:
    """`history` with `entries` added: arrival order, no repeated report, the newest `limit`.

    An entry already present stays as first recorded: a batch re-processed after a crash would
    otherwise turn a `changed` into a `duplicate` of itself.
    """
    known: dict[tuple[str, str], Entry] = {e.identity: e for e in history}
    for entry in entries:
        known.setdefault(entry.identity, entry)
    ordered = sorted(known.values(), key=lambda e: e.order)
    return tuple(ordered[-limit:]) if limit > 0 else ()


def expires_at(history: Sequence[Entry], keep_ms: int) -> int | None:
    """When a history kept on its own may leave its table (None: it is empty).

    A history whose message has a state leaves with the state. One without (a message known
    only from dead letters) lives as long as an unfinished message would after its newest
    webhook (`keep_ms`, the retention of unfinished messages).
    """
    return max(e.received_at for e in history) + keep_ms if history else None


def to_bytes(history: Iterable[Entry]) -> bytes:
    """The compact table value: an orjson array of arrays."""
    return orjson.dumps(
        [
            _VERSION,
            [
                [e.received_at, e.request_id, e.event_id, e.provider_status, e.status, e.outcome, e.detail]
                for e in history
            ],
        ]
    )


def from_bytes(data: bytes | None) -> tuple[Entry, ...]:
    """The table value back (None: no history)."""
    if data is None:
        return ()
    _version, rows = orjson.loads(data)
    return tuple(Entry(*row) for row in rows)


def view(history: Iterable[Entry]) -> list[dict[str, Any]]:
    """The JSON list of GET /messages/{provider}/{message_id}/history."""
    return [
        {
            "request_id": e.request_id,
            "received_at": e.received_at,
            "provider_status": e.provider_status,
            "status": e.status,
            "outcome": e.outcome,
            "event_id": e.event_id or None,
            "detail": e.detail,
        }
        for e in history
    ]
