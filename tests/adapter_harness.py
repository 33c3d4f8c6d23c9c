"""The one harness of the provider adapters' tests: a fixture as the receiver wraps it, parsed, and
the canonical event a test expects, every field spelled out.

    AIVO = AdapterHarness(AivoAdapter(), defaults={"message_id": WAMID, "recipient": "541*******34"})
    assert AIVO.fields("status_sent.json") == [AIVO.expected(Status.SENT, "sent", occurred_at=SENT_AT)]

Each provider's test module says only what is its own (ids, times, masked numbers, the fields a
provider fills); loading, parsing and the full field list live here, once. A test module under
tests/unit/ that loads fixtures or builds expected events itself fails
tests/unit/test_adapter_harness.py.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from schemas.envelope import RawWebhook
from streams.adapters.base import Adapter, ParseResult
from streams.domain.status import Status
from tests.factories import FIXTURES, event_fields, raw_webhook

JSON = "application/json"
FORM = "application/x-www-form-urlencoded"
# When tests.factories.raw_webhook says every fixture was received, and who received it.
RECEIVED_AT = 1_750_030_100_000
REQUEST_ID = "req-1"


def load_fixture(provider: str, name: str, *, content_type: str = JSON, channel: str = "default") -> RawWebhook:
    """tests/fixtures/<provider>/<name> in the envelope the receiver would write for it."""
    return raw_webhook(provider, (FIXTURES / provider / name).read_bytes(), content_type=content_type, channel=channel)


def expected_event(
    provider: str, status: Status, provider_status: str, *, message_id: str, **fields: Any
) -> dict[str, Any]:
    """Every canonical field of one event, as `tests.factories.event_fields` gives them (the
    recipient masked as published by default): what the test names, else the defaults of a
    report with no optional field, its time the provider's own. The message key follows the
    provider, channel and message id unless the test names it."""
    event: dict[str, Any] = {
        "provider": provider,
        "channel": "default",
        "message_id": message_id,
        "status": status,
        "provider_status": provider_status,
        "occurred_at": RECEIVED_AT,
        "received_at": RECEIVED_AT,
        "time_from_receipt": False,
        "request_id": REQUEST_ID,
        "recipient": None,
        "campaign": None,
        "failure_reason": None,
        "error_code": None,
        "error_title": None,
        "conversation_id": None,
        "pricing_category": None,
        "correlation_id": None,
    }
    event.update(fields)
    event.setdefault("message_key", f"{provider}:{event['channel']}:{event['message_id']}")
    return event


@dataclasses.dataclass(frozen=True)
class AdapterHarness:
    """One adapter under test: its fixtures (tests/fixtures/<provider>/), how they are sent, and the
    fields its events have unless a test says otherwise (`defaults`, e.g. the fixtures' message
    id and masked recipient)."""

    adapter: Adapter
    defaults: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    content_type: str = JSON
    provider: str = ""  # the adapter's name when empty (wpp is the generic adapter, named wpp)

    @property
    def name(self) -> str:
        """The provider: the fixtures' folder and the envelope's provider."""
        return self.provider or self.adapter.name

    def body(self, fixture: str) -> bytes:
        """The fixture's bytes, as the provider sends them."""
        return (FIXTURES / self.name / fixture).read_bytes()

    def raw(
        self, fixture: str, *, channel: str = "default", provider: str | None = None, content_type: str | None = None
    ) -> RawWebhook:
        """The fixture's envelope (posted to `provider`'s route when given, e.g. a renamed adapter)."""
        return raw_webhook(
            provider or self.name,
            self.body(fixture),
            content_type=content_type or self.content_type,
            channel=channel,
        )

    def parse(self, fixture: str, *, channel: str = "default", content_type: str | None = None) -> ParseResult:
        """What the adapter makes of the fixture."""
        return self.adapter.parse(self.raw(fixture, channel=channel, content_type=content_type))

    def fields(self, fixture: str) -> list[dict[str, Any]]:
        """Every field of every event the fixture yields, to compare with `expected`."""
        return [event_fields(event) for event in self.parse(fixture).events]

    def expected(self, status: Status, provider_status: str, **fields: Any) -> dict[str, Any]:
        """Every canonical field of one of this adapter's events: `fields`, else `defaults`."""
        chosen = {**self.defaults, **fields}
        message_id = chosen.pop("message_id")
        return expected_event(self.name, status, provider_status, message_id=message_id, **chosen)
