"""The canonical StatusEvent that every provider adapter produces."""

from __future__ import annotations

import dataclasses
import hashlib

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
        """`provider:message_id`, the key of the message in every topic and table."""
        return message_key(self.provider, self.message_id)

    @property
    def event_id(self) -> str:
        """Deterministic id: the same provider report always gets the same id."""
        # A time taken from receipt is not the provider's and differs on every re-delivery
        # (Twilio never sends one), so it stays out of the id: a re-delivered report must
        # still be recognised as a duplicate.
        provider_time = None if self.time_from_receipt else self.occurred_at
        return event_id(self.provider, self.message_id, self.provider_status, provider_time)


def message_key(provider: str, message_id: str) -> str:
    """The key of a message: provider and the provider's message id."""
    return f"{provider}:{message_id}"


def event_id(provider: str, message_id: str, provider_status: str, occurred_at: int | None) -> str:
    """A short stable digest of what identifies one provider report (None: no provider time)."""
    when = "" if occurred_at is None else str(occurred_at)
    raw = f"{provider}\x1f{message_id}\x1f{provider_status}\x1f{when}".encode()
    return hashlib.blake2b(raw, digest_size=12).hexdigest()
