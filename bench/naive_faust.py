"""`python -m bench.naive_faust`: the baseline of the same logic written the naive Faust way.

One await per event, the table set per event, Faust's JSON serializer on the internal and
output topics, default Faust settings otherwise. Configured by the worker's own environment
variables (streams.settings.WorkerSettings), so the benchmark starts it exactly like the worker.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from typing import Any

import faust
from faust.types import StreamT
from faust.worker import Worker

from streams.core.normalizer import normalize
from streams.core.tracker import state_changed, track
from streams.domain.events import StatusEvent
from streams.domain.lattice import Failure, MessageState
from streams.domain.status import FailureReason, Status
from streams.settings import WorkerSettings


def event_to_dict(event: StatusEvent) -> dict[str, Any]:
    """A StatusEvent as a JSON-ready dict."""
    return dataclasses.asdict(event)


def event_from_dict(value: dict[str, Any]) -> StatusEvent:
    """The inverse of event_to_dict."""
    reason = value.get("failure_reason")
    return StatusEvent(
        **{**value, "status": Status(value["status"]), "failure_reason": FailureReason(reason) if reason else None}
    )


def state_to_dict(state: MessageState) -> dict[str, Any]:
    """A MessageState as a JSON-ready dict (the naive table value)."""
    value = dataclasses.asdict(state)
    value["seen"] = sorted(state.seen)
    return value


def state_from_dict(value: dict[str, Any]) -> MessageState:
    """The inverse of state_to_dict."""
    failure = value.get("failure")
    return MessageState(
        **{
            **value,
            "seen": frozenset(value["seen"]),
            "failure": Failure(**{**failure, "reason": FailureReason(failure["reason"])}) if failure else None,
        }
    )


def _audit(request_id: str, stage: str, provider: str, channel: str, outcome: str, **extra: Any) -> dict[str, Any]:
    return {
        "request_id": request_id,
        "stage": stage,
        "provider": provider,
        "channel": channel,
        "outcome": outcome,
        "at": int(time.time() * 1000),
        **extra,
    }


def create_app(settings: WorkerSettings) -> faust.App:
    """The naive app: same topics, same pure calls, per-event awaits."""
    app = faust.App(
        settings.app_id,
        broker=f"kafka://{settings.bootstrap_servers}",
        store="memory://",
        datadir=settings.data_dir,  # the harness gives each run its own (else Faust writes <app id>-data into the cwd)
        topic_partitions=settings.partitions,
        key_serializer="raw",
        value_serializer="json",
        consumer_auto_offset_reset="earliest",
        web_host=settings.web_host,
        web_port=settings.web_port,
        web_bind=settings.web_host,
    )
    names = settings.topics
    raw = app.topic(names.raw, key_type=bytes, value_type=bytes, value_serializer="raw")
    events = app.topic(names.events, key_type=bytes)
    changes = app.topic(names.changes, key_type=bytes)
    audit = app.topic(names.audit, key_type=bytes)
    dlq = app.topic(names.dlq, key_type=bytes)
    states = app.Table("message_state", default=None, key_type=bytes, partitions=settings.partitions)

    @app.agent(raw, name="normalize")
    async def normalize_agent(stream: StreamT[bytes]) -> None:
        async for value in stream:
            result = normalize(value)
            raw_webhook = result.raw
            request_id = raw_webhook.request_id if raw_webhook else "unknown"
            provider = raw_webhook.provider if raw_webhook else "unknown"
            channel = raw_webhook.channel if raw_webhook else "unknown"
            for event in result.events:
                await events.send(key=event.message_key.encode(), value=event_to_dict(event))
            if result.dead_letter_reason is not None:
                await dlq.send(key=request_id.encode(), value={"reason": result.dead_letter_reason})
            await audit.send(
                key=request_id.encode(),
                value=_audit(request_id, "normalize", provider, channel, result.outcome, events=len(result.events)),
            )

    @app.agent(events, name="track")
    async def track_agent(stream: StreamT[dict[str, Any]]) -> None:
        async for record in stream.events():
            event = event_from_dict(record.value)
            key = event.message_key.encode()
            current = states.get(key)
            before = state_from_dict(current) if current is not None else None
            tracked = track(before, event)
            if state_changed(before, tracked):
                states[key] = state_to_dict(tracked.state)
            if tracked.change is not None:
                await changes.send(key=key, value=tracked.change)
            else:
                await audit.send(
                    key=event.request_id.encode(),
                    value=_audit(event.request_id, "track", event.provider, event.channel, tracked.outcome.value),
                )

    return app


def main() -> None:
    """Run the naive app until SIGTERM."""
    settings = WorkerSettings()
    logging.basicConfig(level=settings.log_level.upper())
    Worker(create_app(settings), loglevel=settings.log_level, quiet=True).execute_from_commandline()


if __name__ == "__main__":
    main()
