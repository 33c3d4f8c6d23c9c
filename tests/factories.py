"""Small builders shared by the tests."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from schemas.envelope import RawWebhook
from schemas.privacy import Privacy
from streams.adapters.base import Adapter, UnparseableWebhook
from streams.domain.events import StatusEvent
from streams.domain.status import FailureReason, Status

FIXTURES = Path(__file__).parent / "fixtures"


def raw_webhook(
    provider: str, body: bytes, content_type: str = "application/json", channel: str = "default"
) -> RawWebhook:
    """An envelope as the receiver would write it."""
    return RawWebhook(
        request_id="req-1",
        provider=provider,
        channel=channel,
        received_at=1_750_030_100_000,
        content_type=content_type,
        url=f"http://127.0.0.1:8080/webhooks/{provider}",
        body=body,
    )


def status_event(
    status: Status,
    occurred_at: int,
    message_id: str = "wamid.1",
    provider_status: str | None = None,
    failure_reason: FailureReason | None = None,
    campaign: str | None = None,
) -> StatusEvent:
    """A canonical event of message `message_id`."""
    return StatusEvent(
        provider="meta",
        channel="default",
        message_id=message_id,
        status=status,
        provider_status=provider_status or status.value,
        occurred_at=occurred_at,
        received_at=occurred_at + 5,
        request_id="req-1",
        failure_reason=failure_reason,
        campaign=campaign,
    )


def event_fields(event: StatusEvent) -> dict[str, object]:
    """Every field of an event plus its message key, recipient as published by default (masked).

    Adapters hand recipients over as sent; normalize applies STATUSFLOW_RECIPIENT_PRIVACY
    (schemas/privacy.py), whose default is mask: that is what the adapter tests compare in full.
    """
    fields = dataclasses.asdict(event) | {"message_key": event.message_key}
    fields["recipient"] = Privacy("mask").recipient(event.recipient)
    return fields


def refusal(adapter: Adapter, raw: RawWebhook) -> str:
    """Why an adapter refuses a webhook that yields nothing: the whole webhook's reason, or the
    dead-letter reason of its one rejected item (a batch of one item stands alone too)."""
    try:
        result = adapter.parse(raw)
    except UnparseableWebhook as exc:
        return str(exc)
    assert not result.events, f"events were found: {result.events}"
    assert len(result.rejected) == 1, f"expected one rejected item, got {result.rejected}"
    return result.rejected[0].dead_letter_reason
