"""The normalize and track agents: one pure call per record, then I/O.

Faust acknowledges a record even when its agent raises, so nothing here may raise for bad
input: undecodable or unparseable records go to the dead-letter topic with their reason.
"""

from __future__ import annotations

import logging
import time

from faust.types import EventT, StreamT

from schemas.codec import SchemaError, codec
from streams.normalizer import normalize
from streams.outputs import Source, audit_record, dead_letter_record
from streams.records import event_from_avro, event_to_avro, state_from_bytes, state_to_bytes
from streams.topology import Topology
from streams.tracker import state_changed, track

log = logging.getLogger(__name__)


def _now_ms() -> int:
    return int(time.time() * 1000)


def _source(record: EventT[bytes]) -> Source:
    message = record.message
    return Source(topic=message.topic, partition=message.partition, offset=message.offset)


async def _dead_letter(
    t: Topology, record: EventT[bytes], request_id: str, *, provider: str, channel: str, reason: str
) -> None:
    source = _source(record)
    log.warning(
        "dead-lettering %s from %s[%s]@%s: %s", request_id, source.topic, source.partition, source.offset, reason
    )
    value = dead_letter_record(
        request_id, provider=provider, channel=channel, reason=reason, source=source, value=record.value, at=_now_ms()
    )
    await t.dlq.send(key=request_id.encode(), value=value)


def register_agents(t: Topology) -> None:
    """Attach the agents to the app."""
    change_codec = codec("status_change")

    @t.app.agent(t.raw, name="normalize")
    async def normalize_agent(stream: StreamT[bytes]) -> None:
        async for record in stream.events():
            result = normalize(record.value)
            raw = result.raw
            request_id = raw.request_id if raw else (record.message.key or b"").decode("utf-8", "replace")
            provider = raw.provider if raw else "unknown"
            channel = raw.channel if raw else "unknown"
            for event in result.events:
                await t.events.send(key=event.message_key.encode(), value=event_to_avro(event))
            if result.dead_letter_reason is not None:
                await _dead_letter(
                    t, record, request_id, provider=provider, channel=channel, reason=result.dead_letter_reason
                )
            audit = audit_record(
                request_id,
                stage="normalize",
                provider=provider,
                channel=channel,
                outcome=result.outcome,
                at=_now_ms(),
                detail=result.dead_letter_reason,
                events_found=len(result.events),
                events_ignored=result.ignored,
            )
            await t.audit.send(key=request_id.encode(), value=audit)

    @t.app.agent(t.events, name="track")
    async def track_agent(stream: StreamT[bytes]) -> None:
        async for record in stream.events():
            try:
                event = event_from_avro(record.value)
            except SchemaError as exc:
                # Only a foreign producer can put this here; keep it, with the reason.
                request_id = (record.message.key or b"").decode("utf-8", "replace")
                await _dead_letter(
                    t, record, request_id, provider="unknown", channel="unknown", reason=f"undecodable event: {exc}"
                )
                continue
            key = event.message_key.encode()
            current = t.states.get(key)
            before = state_from_bytes(key, current) if current is not None else None
            tracked = track(before, event)
            if state_changed(before, tracked):
                # Written while this event is current, so the changelog record lands in the
                # partition of the event's own key (co-partitioned with wa.status.events).
                t.states[key] = state_to_bytes(tracked.state)
            if tracked.change is not None:
                await t.changes.send(key=key, value=change_codec.encode(tracked.change))
            else:
                audit = audit_record(
                    event.request_id,
                    stage="track",
                    provider=event.provider,
                    channel=event.channel,
                    outcome=tracked.outcome.value,
                    at=_now_ms(),
                    detail=event.message_key,
                    discriminator=event.event_id,
                )
                await t.audit.send(key=event.request_id.encode(), value=audit)
