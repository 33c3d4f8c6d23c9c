"""The one small interface every provider adapter implements."""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Iterator
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
class Rejection:
    """One item of a batch that could not be normalised, while its siblings were.

    `where` is the item's position in the body (`body[2]`, `results[0]`,
    `entry[0].changes[0].value.statuses[1]`); `item` is the item as it was read, kept only so
    that the ids it names can be found for the message's history (never published).
    """

    where: str
    reason: str
    item: object = dataclasses.field(default=None, compare=False, repr=False)

    @property
    def dead_letter_reason(self) -> str:
        """The reason naming the item's position once (most reasons already start with it)."""
        return self.reason if self.reason.startswith(self.where) else f"{self.where}: {self.reason}"


@dataclasses.dataclass(frozen=True, slots=True)
class ParseResult:
    """What one webhook carried: events, ignored items, channel events, and items rejected alone."""

    events: tuple[StatusEvent, ...] = ()
    ignored: int = 0
    ignored_reasons: tuple[str, ...] = ()
    channel_events: tuple[ChannelEvent, ...] = ()
    rejected: tuple[Rejection, ...] = ()


@dataclasses.dataclass(slots=True)
class Batch:
    """A parse collected item by item, where every item stands alone.

    An UnparseableWebhook raised while reading one item (`with batch.item(where, obj): ...`)
    rejects that item only: it becomes a `Rejection` (its own dead letter) and the next item is
    read. An error outside any item (a body that is not JSON, a batch that is not a list)
    still refuses the whole webhook.
    """

    events: list[StatusEvent] = dataclasses.field(default_factory=list)
    ignored_reasons: list[str] = dataclasses.field(default_factory=list)
    channel_events: list[ChannelEvent] = dataclasses.field(default_factory=list)
    rejected: list[Rejection] = dataclasses.field(default_factory=list)

    @contextlib.contextmanager
    def item(self, where: str, item: object = None) -> Iterator[None]:
        """Read one item; its UnparseableWebhook becomes its rejection."""
        try:
            yield
        except UnparseableWebhook as exc:
            self.rejected.append(Rejection(where, str(exc), item))

    def each(self, value: object, path: str) -> Iterator[tuple[str, dict[str, Any]]]:
        """(position, object) of every element of the list `value` found at `path`.

        An element that is not an object is rejected by itself; a `value` that is not a list
        raises (pass `container.get(key, [])`: a missing list is an empty one).
        """
        if not isinstance(value, list):
            msg = f"{path} must be a list"
            raise UnparseableWebhook(msg)
        for i, element in enumerate(value):
            where = f"{path}[{i}]"
            if isinstance(element, dict):
                yield where, element
            else:
                self.rejected.append(Rejection(where, f"{where} must be an object, got {_kind(element)}", element))

    def result(self) -> ParseResult:
        """The frozen result."""
        return ParseResult(
            events=tuple(self.events),
            ignored=len(self.ignored_reasons),
            ignored_reasons=tuple(self.ignored_reasons),
            channel_events=tuple(self.channel_events),
            rejected=tuple(self.rejected),
        )


def _kind(value: object) -> str:
    return "null" if value is None else type(value).__name__


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
    """Turns a raw envelope into canonical events; raises UnparseableWebhook for the whole
    webhook, and reports each bad item of a batch in `ParseResult.rejected` (see `Batch`)."""

    name: str

    def parse(self, raw: RawWebhook) -> ParseResult:
        """Parse one webhook."""
        ...
