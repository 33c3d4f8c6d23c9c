"""raw envelope → canonical events, or a dead-letter reason: the pure core of the normalize agent."""

from __future__ import annotations

import dataclasses

from schemas.codec import SchemaError
from schemas.envelope import RawWebhook
from schemas.privacy import Privacy
from streams.adapters.base import ChannelEvent, Rejection, UnparseableWebhook
from streams.adapters.registry import Resolver, adapter_for
from streams.domain.events import StatusEvent


@dataclasses.dataclass(frozen=True, slots=True)
class Normalized:
    """The outcome of normalising one raw record.

    `dead_letter_reason` refuses the whole webhook; `rejected` are items of a batch refused one
    by one while their siblings became events (each is a dead letter of its own).
    """

    raw: RawWebhook | None
    events: tuple[StatusEvent, ...] = ()
    channel_events: tuple[ChannelEvent, ...] = ()
    ignored: int = 0
    dead_letter_reason: str | None = None
    rejected: tuple[Rejection, ...] = ()

    @property
    def outcome(self) -> str:
        """The audit outcome word: dead_lettered when nothing of the webhook could be used."""
        if self.dead_letter_reason is not None:
            return "dead_lettered"
        if not self.events and not self.channel_events:
            return "dead_lettered" if self.rejected else "ignored"
        return "normalized"


MASK = Privacy("mask")


def normalize(value: bytes, resolve: Resolver = adapter_for, privacy: Privacy = MASK) -> Normalized:
    """Decode and parse one raw record; never raises for bad input.

    Adapters return recipients as sent; `privacy` masks or hashes them (and phone-like numbers in
    error titles, channel event details and dead-letter reasons) before anything leaves here.
    """
    try:
        raw = RawWebhook.from_avro(value)
    except SchemaError as exc:
        return Normalized(raw=None, dead_letter_reason=f"undecodable envelope: {exc}")
    adapter = resolve(raw.provider, raw.channel)
    if adapter is None:
        return Normalized(raw=raw, dead_letter_reason=f"no adapter for provider {raw.provider!r}")
    try:
        result = adapter.parse(raw)
    except UnparseableWebhook as exc:
        return Normalized(raw=raw, dead_letter_reason=privacy.text(str(exc)))
    except Exception as exc:  # noqa: BLE001 - an adapter bug must dead-letter the webhook, not crash the agent
        return Normalized(raw=raw, dead_letter_reason=privacy.text(f"adapter {raw.provider} failed: {exc!r}"))
    ranked = tuple(_private(e, privacy) for e in result.events if not e.status.is_side_event)
    side = len(result.events) - len(ranked)
    return Normalized(
        raw=raw,
        events=ranked,
        channel_events=tuple(
            dataclasses.replace(c, detail=privacy.text(c.detail)) if c.detail else c for c in result.channel_events
        ),
        ignored=result.ignored + side,
        rejected=tuple(dataclasses.replace(r, reason=privacy.text(r.reason) or r.reason) for r in result.rejected),
    )


def _private(event: StatusEvent, privacy: Privacy) -> StatusEvent:
    if event.recipient is None and event.error_title is None:
        return event
    return dataclasses.replace(
        event, recipient=privacy.recipient(event.recipient), error_title=privacy.text(event.error_title)
    )
