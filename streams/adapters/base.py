"""The one small interface every provider adapter implements."""

from __future__ import annotations

import dataclasses
from typing import Any, Protocol

from schemas.envelope import RawWebhook
from schemas.errors import StatusflowError
from streams.domain.events import StatusEvent


class UnparseableWebhook(StatusflowError):
    """The webhook cannot be normalised; it goes to the dead-letter topic with this reason."""

    retriable = False


@dataclasses.dataclass(frozen=True, slots=True)
class ChannelEvent:
    """A channel-level event (logout, connection closed): not a message status."""

    provider: str
    channel: str
    kind: str
    occurred_at: int
    detail: str | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class ParseResult:
    """What one webhook carried."""

    events: tuple[StatusEvent, ...] = ()
    ignored: int = 0
    ignored_reasons: tuple[str, ...] = ()
    channel_events: tuple[ChannelEvent, ...] = ()


def new_event(raw: RawWebhook, **fields: Any) -> StatusEvent:
    """A StatusEvent of this webhook: provider, channel, request id and receipt time from the envelope."""
    return StatusEvent(
        provider=raw.provider,
        channel=raw.channel,
        received_at=raw.received_at,
        request_id=raw.request_id,
        **fields,
    )


class Adapter(Protocol):
    """Turns a raw envelope into canonical events; raises UnparseableWebhook."""

    name: str

    def parse(self, raw: RawWebhook) -> ParseResult:
        """Parse one webhook."""
        ...
