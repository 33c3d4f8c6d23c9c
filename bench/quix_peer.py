"""`python -m bench.quix_peer`: the peer a Python team would pick instead, Quix Streams.

The same normalize and track, with the project's own pure functions, written the way Quix
Streams' documentation teaches: a StreamingDataFrame over the raw topic, one row per status
event (`expand=True`), `group_by` on the message key (Quix repartitions through a topic of its
own), a stateful `apply` keeping each message's state in Quix's RocksDB state store, changes
out as JSON. Configured by the worker's own environment variables (WorkerSettings), so the
benchmark starts it exactly like the worker and the naive Faust app.

The output timestamp is set by this process (`set_timestamp`): Quix keeps the input record's
timestamp by default, and the bench measures first to last output by the producer's clock.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

from quixstreams import Application, State

from bench.naive_faust import event_from_dict, event_to_dict, state_from_dict, state_to_dict
from streams.core.normalizer import normalize
from streams.core.tracker import state_changed, track
from streams.domain.events import message_key
from streams.settings import WorkerSettings


def events_of(raw: bytes) -> list[dict[str, Any]]:
    """The status events of one raw envelope, as JSON-ready rows."""
    return [event_to_dict(event) for event in normalize(raw).events]


def key_of(row: dict[str, Any]) -> str:
    """The key the state is kept under (the worker's message key)."""
    return message_key(row["provider"], row["channel"], row["message_id"])


def track_row(row: dict[str, Any], state: State) -> dict[str, Any] | None:
    """Fold one event into the message's state; the change, or None when nothing changed."""
    current = state.get("state")
    before = state_from_dict(current) if current is not None else None
    tracked = track(before, event_from_dict(row))
    if state_changed(before, tracked):
        state.set("state", state_to_dict(tracked.state))
    change: dict[str, Any] | None = tracked.change
    return change


def now_ms(value: Any, key: Any, timestamp: int, headers: Any) -> int:
    """The producing process's clock, like the other contenders' output records."""
    return int(time.time() * 1000)


def create_app(settings: WorkerSettings) -> Application:
    """The Quix Streams app on the worker's topics."""
    app = Application(
        broker_address=settings.bootstrap_servers,
        consumer_group=settings.app_id,
        auto_offset_reset="earliest",
        state_dir=str(Path(settings.data_dir) / "quix-state"),
        loglevel="WARNING",
    )
    names = settings.topics
    raw = app.topic(names.raw, key_deserializer="bytes", value_deserializer="bytes")
    changes = app.topic(names.changes, key_serializer="str", value_serializer="json")
    sdf = app.dataframe(raw)
    sdf = sdf.apply(events_of, expand=True)
    sdf = sdf.group_by(key_of, name="message")
    sdf = sdf.apply(track_row, stateful=True)
    sdf = sdf.filter(lambda change: change is not None)
    sdf = sdf.set_timestamp(now_ms)
    sdf.to_topic(changes)
    return app


def main() -> None:
    """Run the Quix app until SIGTERM."""
    settings = WorkerSettings()
    logging.basicConfig(level=settings.log_level.upper())
    create_app(settings).run()


if __name__ == "__main__":
    main()
