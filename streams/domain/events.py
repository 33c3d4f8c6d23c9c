"""The canonical StatusEvent that every provider adapter produces, and a message's key.

A message is identified by its provider, its channel and the provider's message id: two
customers on one deployment whose systems both number a message `42` (the `generic` and `wpp`
providers let them) are two messages. `message_key` and `parse_message_key` are the one place
that builds and reads the key `provider:channel:message_id`; everything else goes through them.
"""

from __future__ import annotations

import dataclasses
import hashlib
from typing import NamedTuple

from streams.domain.status import FailureReason, Status


@dataclasses.dataclass(frozen=True, slots=True)
class StatusEvent:
    """One status of one message, in the canonical model. Times are epoch milliseconds."""

    provider: str
    channel: str
    message_id: str
    status: Status
    provider_status: str
    occurred_at: int
    received_at: int
    request_id: str
    time_from_receipt: bool = False
    recipient: str | None = None
    campaign: str | None = None
    failure_reason: FailureReason | None = None
    error_code: str | None = None
    error_title: str | None = None
    conversation_id: str | None = None
    pricing_category: str | None = None
    correlation_id: str | None = None

    @property
    def message_key(self) -> str:
        """`provider:channel:message_id`, the key of the message in every topic and table."""
        return message_key(self.provider, self.channel, self.message_id)

    @property
    def event_id(self) -> str:
        """Deterministic id: the same provider report always gets the same id."""
        # A time taken from receipt is not the provider's and differs on every re-delivery
        # (Twilio never sends one), so it stays out of the id: a re-delivered report must
        # still be recognised as a duplicate.
        provider_time = None if self.time_from_receipt else self.occurred_at
        return event_id(self.provider, self.channel, self.message_id, self.provider_status, provider_time)


class MessageKey(NamedTuple):
    """The parts of a message key."""

    provider: str
    channel: str
    message_id: str


def message_key(provider: str, channel: str, message_id: str) -> str:
    """The key of a message: `provider:channel:message_id`.

    Providers and channel names never hold a `:` (channel names match
    schemas.channels.NAME_PATTERN), message ids may: the first two colons delimit."""
    return f"{provider}:{channel}:{message_id}"


def parse_message_key(key: str | bytes) -> MessageKey:
    """The parts of a key made by `message_key`; ValueError when it has fewer than three."""
    text = key.decode() if isinstance(key, bytes) else key
    parts = text.split(":", 2)
    if len(parts) != 3 or not parts[0] or not parts[1] or not parts[2]:
        msg = f"not a message key (provider:channel:message_id): {text!r}"
        raise ValueError(msg)
    return MessageKey(parts[0], parts[1], parts[2])


def parse_legacy_message_key(key: str | bytes, channel: str) -> MessageKey:
    """A key of the form before channels were part of a message's identity
    (`provider:message_id`), read with the channel kept beside it (docs/runbook.md, Upgrading)."""
    text = key.decode() if isinstance(key, bytes) else key
    provider, _, message_id = text.partition(":")
    return MessageKey(provider, channel, message_id)


def event_id(provider: str, channel: str, message_id: str, provider_status: str, occurred_at: int | None) -> str:
    """A short stable digest of what identifies one provider report (None: no provider time).

    The channel is part of it: the same message number with the same status and time on two
    channels is two reports, not a re-delivery of one."""
    when = "" if occurred_at is None else str(occurred_at)
    raw = f"{provider}\x1f{channel}\x1f{message_id}\x1f{provider_status}\x1f{when}".encode()
    return hashlib.blake2b(raw, digest_size=12).hexdigest()
