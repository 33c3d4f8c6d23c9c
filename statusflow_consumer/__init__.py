"""Read statusflow's topics without a schema registry.

Every statusflow topic carries Avro single-object encoding: `C3 01`, the CRC-64-AVRO
fingerprint of the writer's schema (8 bytes, little-endian), then the Avro body. The
fingerprint names the schema, so any record decodes with the `.avsc` files shipped in this
package (`schema_files()`), including records written with an earlier schema version.

    from statusflow_consumer import Deduper, decoded
    dedupe = Deduper()
    async for item in decoded(consumer):          # an aiokafka consumer you started
        if item.schema == "status_change" and dedupe.first_time(item):
            print(item.record["message_key"], item.record["status"])

Delivery is at least once: a repeat carries the same deterministic id (`Decoded.dedupe_id`:
change_id, alert_id, metric_id + revision, funnel_id + revision, audit_id, request_id), which
`Deduper` drops. wa.funnel is an upsert topic (compacted): keep the last `CohortFunnel` per key
(`funnel_key`), which is the highest revision per funnel_id.
The topic contract (keys, ordering, retention) is in docs/topics.md.
"""

from __future__ import annotations

import base64
import collections
import dataclasses
import json
from collections.abc import AsyncIterator
from importlib import resources
from importlib.resources.abc import Traversable
from typing import Any, Protocol

from schemas.codec import SCHEMA_NAMES, SchemaError, decode_any
from schemas.topics import partitions_of
from statusflow_consumer.records import Alert, CohortFunnel, MetricWindow, StatusChange, funnel_key

__all__ = [
    "DEDUPE_FIELDS",
    "TOPIC_SCHEMAS",
    "Alert",
    "CohortFunnel",
    "Decoded",
    "Deduper",
    "MetricWindow",
    "SchemaError",
    "StatusChange",
    "decode",
    "decode_message",
    "decoded",
    "funnel_key",
    "partitions_of",
    "schema_files",
    "schema_json",
]

# The value schema of each topic role (names as in STATUSFLOW_TOPIC_<ROLE>).
TOPIC_SCHEMAS = {
    "raw": "raw_webhook",
    "events": "status_event_bundle",
    "changes": "status_change",
    "alerts": "alert",
    "metrics": "metric_window",
    "dlq": "dead_letter",
    "audit": "audit_record",
    "signals": "channel_signals",
    "redrive": "redrive",
    "funnel": "cohort_funnel",
    # The notifier's own bookkeeping (docs/notifier.md), decodable like the rest.
    "alerts_parked": "parked_notification",
    "alerts_delivered": "delivered_alert",
}

# The fields that identify a record across at-least-once repeats, per schema. Internal hops
# (bundles, channel signals) have none: their consumers are idempotent by construction.
DEDUPE_FIELDS: dict[str, tuple[str, ...]] = {
    "raw_webhook": ("request_id",),
    "status_event": ("event_id",),
    "status_change": ("change_id",),
    "alert": ("alert_id",),
    "metric_window": ("metric_id", "revision"),
    "cohort_funnel": ("funnel_id", "revision"),
    "audit_record": ("audit_id",),
    # A webhook dead-lettered again after a redrive is news when its reason is new.
    "dead_letter": ("request_id", "reason"),
    "redrive": ("request_id", "generation"),
    "delivered_alert": ("sink", "alert_id"),
}


@dataclasses.dataclass(frozen=True, slots=True)
class Decoded:
    """One decoded record, with where it came from when it came from a consumer."""

    schema: str
    record: dict[str, Any]
    topic: str | None = None
    partition: int | None = None
    offset: int | None = None
    key: str | None = None
    timestamp: int | None = None

    @property
    def dedupe_id(self) -> str | None:
        """The deterministic id of the record (None for internal records that have none)."""
        fields = DEDUPE_FIELDS.get(self.schema)
        if fields is None:
            return None
        return f"{self.schema}:" + ":".join(str(self.record[f]) for f in fields)

    def to_json(self) -> str:
        """One JSON line: schema, key, topic, partition, offset and every field.

        Bytes fields (a raw webhook's body) become text when they are UTF-8, else
        `{"base64": ...}`.
        """
        head = {
            "schema": self.schema,
            "topic": self.topic,
            "partition": self.partition,
            "offset": self.offset,
            "key": self.key,
        }
        return json.dumps({**head, **{k: _jsonable(v) for k, v in self.record.items()}}, ensure_ascii=False)


def _jsonable(value: Any) -> Any:
    if isinstance(value, bytes):
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError:
            return {"base64": base64.b64encode(value).decode("ascii")}
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    return value


def decode(
    value: bytes,
    *,
    topic: str | None = None,
    partition: int | None = None,
    offset: int | None = None,
    key: bytes | None = None,
    timestamp: int | None = None,
) -> Decoded:
    """Decode any statusflow record by its fingerprint; raises SchemaError for anything else."""
    schema, record = decode_any(value)
    text_key = key.decode("utf-8", "replace") if key is not None else None
    return Decoded(schema, record, topic, partition, offset, text_key, timestamp)


class ConsumerRecord(Protocol):
    """What `decode_message` reads of an aiokafka ConsumerRecord."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    timestamp: int


def decode_message(message: ConsumerRecord) -> Decoded | None:
    """Decode a consumer record; None for a tombstone (no value). Raises SchemaError."""
    if message.value is None:
        return None
    return decode(
        message.value,
        topic=message.topic,
        partition=message.partition,
        offset=message.offset,
        key=message.key,
        timestamp=message.timestamp,
    )


class Consumer(Protocol):
    """The part of aiokafka's AIOKafkaConsumer that `decoded` uses."""

    async def getmany(self, *partitions: Any, timeout_ms: int = 0, max_records: int | None = None) -> Any:
        """Records per partition."""


async def decoded(
    consumer: Consumer, *, timeout_ms: int = 1000, idle_polls: int | None = None
) -> AsyncIterator[Decoded]:
    """Decoded records from a started aiokafka consumer, in each partition's order.

    Stops after `idle_polls` consecutive empty polls when given (else runs until cancelled).
    A record that is not statusflow's raises SchemaError: a topic of the contract never
    holds one, so it means a misconfigured topic name rather than something to skip.
    """
    idle = 0
    while idle_polls is None or idle < idle_polls:
        batches = await consumer.getmany(timeout_ms=timeout_ms)
        idle = 0 if batches else idle + 1
        for batch in batches.values():
            for message in batch:
                item = decode_message(message)
                if item is not None:
                    yield item


class Deduper:
    """Drops repeats by deterministic id, remembering the last `capacity` ids (bounded memory).

    At-least-once repeats arrive close to the original (a redelivery after a crash or a
    rebalance), so a window of recent ids catches them without unbounded growth.
    """

    def __init__(self, capacity: int = 100_000) -> None:
        self._seen: collections.OrderedDict[str, None] = collections.OrderedDict()
        self._capacity = capacity

    def first_time(self, item: Decoded) -> bool:
        """True the first time an id is seen (and for records without an id)."""
        key = item.dedupe_id
        if key is None:
            return True
        if key in self._seen:
            self._seen.move_to_end(key)
            return False
        self._seen[key] = None
        if len(self._seen) > self._capacity:
            self._seen.popitem(last=False)
        return True


def schema_files() -> dict[str, Traversable]:
    """Every current `.avsc` of the contract, by schema name, as shipped in the package."""
    folder = resources.files("schemas")
    return {name: folder.joinpath(f"{name}.avsc") for name in SCHEMA_NAMES}


def schema_json(name: str) -> dict[str, Any]:
    """The parsed `.avsc` of one schema (e.g. to register it in a registry of your own)."""
    loaded: dict[str, Any] = json.loads(schema_files()[name].read_text(encoding="utf-8"))
    return loaded
