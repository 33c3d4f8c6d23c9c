"""Per-channel status filters in the normalize stage."""

from __future__ import annotations

from schemas.channels import parse_channels
from schemas.envelope import RawWebhook
from streams.clock import now_ms
from streams.core.batches import RawRecord, plan_normalize
from streams.core.filters import status_filter
from streams.core.outputs import Source
from streams.domain.status import Status
from tests.factories import FIXTURES, status_event

CHANNELS = parse_channels(
    {"channels": [{"name": "ops", "provider": "meta", "statuses": ["failed", "read"]}]}, environ={}
)


def test_unconfigured_channels_keep_everything() -> None:
    accept = status_filter(None)
    assert accept(status_event(Status.SENT, 1))


def test_configured_channel_keeps_only_its_statuses() -> None:
    accept = status_filter(CHANNELS)
    ops = [s for s in Status if not s.is_side_event and accept(_on("ops", s))]
    assert ops == [Status.FAILED, Status.READ]
    assert accept(_on("other", Status.SENT))


def test_filtered_events_are_audited_not_processed() -> None:
    body = (FIXTURES / "meta" / "status_sent.json").read_bytes()
    raw = RawWebhook("r1", "meta", "ops", 1, "application/json", "http://x/webhooks/meta/ops", body)
    plan = plan_normalize(
        [RawRecord(b"r1", raw.to_avro(), Source("raw", 0, 0))], 4, status_filter(CHANNELS), at=now_ms()
    )
    assert plan.events == 0
    assert plan.bundles == {}
    ((_, audit),) = plan.audits
    from schemas.codec import codec

    record = codec("audit_record").decode(audit)
    assert (record["events_found"], record["events_ignored"]) == (1, 1)
    assert record["detail"] == "1 events filtered by the channel"


def _on(channel: str, status: Status):  # type: ignore[no-untyped-def]
    import dataclasses

    return dataclasses.replace(status_event(status, 1), channel=channel)
