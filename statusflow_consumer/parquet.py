"""The Parquet layout of the analytics export: tables, rows, dates and file names (no I/O here).

    <out>/topic=<topic>/date=<YYYY-MM-DD>/part-<partition>-<first offset>-<last offset>.parquet

A file holds one contiguous offset range of one Kafka partition, all of one date, so its name
says exactly which records it holds: a rerun that reads the same records writes the same name
(and replaces the file), and the highest last offset on disk says where a partition resumes.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
from pathlib import Path
from typing import Any

from schemas.errors import MissingExtra
from statusflow_consumer import Decoded, funnel_key

try:
    import pyarrow as pa
except ModuleNotFoundError as exc:
    raise MissingExtra("pyarrow", "analytics", "The Parquet export (statusflow_consumer.parquet)") from exc

_TS = pa.timestamp("ms", tz="UTC")
_COUNTS = pa.map_(pa.string(), pa.int64())
_KAFKA = [
    pa.field("kafka_partition", pa.int32(), nullable=False),
    pa.field("kafka_offset", pa.int64(), nullable=False),
    pa.field("kafka_timestamp", _TS),
]
_CHANGE_TIMES = ("queued_at", "created_at", "sent_at", "failed_at", "delivered_at", "read_at")
STATUSES = ("queued", "created", "sent", "failed", "delivered", "read")
PERCENTILES = ("p50", "p90", "p99")

CHANGES_SCHEMA = pa.schema(
    [
        pa.field("change_id", pa.string(), nullable=False),
        pa.field("message_key", pa.string(), nullable=False),
        pa.field("provider", pa.string(), nullable=False),
        pa.field("channel", pa.string(), nullable=False),
        pa.field("message_id", pa.string(), nullable=False),
        pa.field("campaign", pa.string()),
        pa.field("recipient", pa.string()),
        pa.field("previous_status", pa.string()),
        pa.field("status", pa.string(), nullable=False),
        pa.field("event_id", pa.string(), nullable=False),
        *(pa.field(name, _TS) for name in _CHANGE_TIMES),
        pa.field("delivered_implied", pa.bool_()),
        pa.field("failure_reason", pa.string()),
        pa.field("error_code", pa.string()),
        pa.field("error_title", pa.string()),
        pa.field("anomaly", pa.bool_()),
        pa.field("correlation_id", pa.string()),
        *_KAFKA,
    ]
)

METRICS_SCHEMA = pa.schema(
    [
        pa.field("metric_id", pa.string(), nullable=False),
        pa.field("revision", pa.int32(), nullable=False),
        pa.field("scope", pa.string(), nullable=False),
        pa.field("provider", pa.string(), nullable=False),
        pa.field("channel", pa.string(), nullable=False),
        pa.field("campaign", pa.string()),
        pa.field("window_start", _TS, nullable=False),
        pa.field("window_end", _TS, nullable=False),
        *(pa.field(status, pa.int64(), nullable=False) for status in STATUSES),
        pa.field("failures_by_reason", _COUNTS),
        pa.field("failures_by_code", _COUNTS),
        pa.field("delivery_rate", pa.float64()),
        pa.field("read_rate", pa.float64()),
        pa.field("failure_rate", pa.float64()),
        *(pa.field(f"sent_to_delivered_{p}_ms", pa.int64()) for p in PERCENTILES),
        *(pa.field(f"delivered_to_read_{p}_ms", pa.int64()) for p in PERCENTILES),
        pa.field("final", pa.bool_()),
        *_KAFKA,
    ]
)

# wa.funnel is an upsert topic: every revision of a cohort lands as a row, and a query keeps the
# highest revision per funnel_id (= the last record per funnel_key), as examples/analytics.sql does.
FUNNEL_COUNTS = (
    "attempted",
    "delivered",
    "delivered_implied",
    "read",
    "failed",
    "expired",
    "pending",
    "pending_queued",
    "pending_created",
    "pending_sent",
)
FUNNEL_SCHEMA = pa.schema(
    [
        pa.field("funnel_key", pa.string(), nullable=False),
        pa.field("funnel_id", pa.string(), nullable=False),
        pa.field("revision", pa.int64(), nullable=False),
        pa.field("scope", pa.string(), nullable=False),
        pa.field("provider", pa.string(), nullable=False),
        pa.field("channel", pa.string(), nullable=False),
        pa.field("campaign", pa.string()),
        pa.field("cohort_start", _TS, nullable=False),
        pa.field("cohort_end", _TS, nullable=False),
        *(pa.field(name, pa.int64(), nullable=False) for name in FUNNEL_COUNTS),
        pa.field("failures_by_reason", _COUNTS),
        pa.field("failures_by_code", _COUNTS),
        pa.field("delivery_rate", pa.float64()),
        pa.field("read_rate", pa.float64()),
        pa.field("failure_rate", pa.float64()),
        pa.field("sent_to_delivered", pa.list_(pa.int64())),
        pa.field("delivered_to_read", pa.list_(pa.int64())),
        *(pa.field(f"sent_to_delivered_{p}_ms", pa.int64()) for p in PERCENTILES),
        *(pa.field(f"delivered_to_read_{p}_ms", pa.int64()) for p in PERCENTILES),
        *_KAFKA,
    ]
)

# The Parquet table of each exported schema.
SCHEMAS = {"status_change": CHANGES_SCHEMA, "metric_window": METRICS_SCHEMA, "cohort_funnel": FUNNEL_SCHEMA}

_PART = re.compile(r"^part-(\d+)-(\d+)-(\d+)\.parquet$")


def _kafka(item: Decoded) -> dict[str, Any]:
    return {"kafka_partition": item.partition, "kafka_offset": item.offset, "kafka_timestamp": item.timestamp}


def change_row(item: Decoded) -> dict[str, Any]:
    """A StatusChange as one row of CHANGES_SCHEMA."""
    return {
        field.name: item.record.get(field.name) for field in CHANGES_SCHEMA if not field.name.startswith("kafka_")
    } | _kafka(item)


def metric_row(item: Decoded) -> dict[str, Any]:
    """A MetricWindow as one row of METRICS_SCHEMA: transitions and percentiles as columns."""
    r = item.record
    row = {name: r[name] for name in ("metric_id", "revision", "scope", "provider", "channel", "campaign")}
    row |= {"window_start": r["window_start"], "window_end": r["window_end"]}
    row |= {status: r["transitions"].get(status, 0) for status in STATUSES}
    row |= {"failures_by_reason": r["failures_by_reason"], "failures_by_code": r["failures_by_code"]}
    row |= {name: r[name] for name in ("delivery_rate", "read_rate", "failure_rate", "final")}
    row |= {f"sent_to_delivered_{p}_ms": r["sent_to_delivered_ms"].get(p) for p in PERCENTILES}
    row |= {f"delivered_to_read_{p}_ms": r["delivered_to_read_ms"].get(p) for p in PERCENTILES}
    return row | _kafka(item)


def funnel_row(item: Decoded) -> dict[str, Any]:
    """A CohortFunnel as one row of FUNNEL_SCHEMA: its key (the Kafka key, or rebuilt from the
    fields), counts, rates, histograms, and percentiles as columns."""
    r = item.record
    row: dict[str, Any] = {"funnel_key": item.key if item.key is not None else funnel_key(r)}
    row |= {name: r[name] for name in ("funnel_id", "revision", "scope", "provider", "channel", "campaign")}
    row |= {"cohort_start": r["cohort_start"], "cohort_end": r["cohort_end"]}
    row |= {name: r.get(name) or 0 for name in FUNNEL_COUNTS}
    row |= {name: r[name] for name in ("failures_by_reason", "failures_by_code")}
    row |= {name: r[name] for name in ("delivery_rate", "read_rate", "failure_rate")}
    row |= {name: r[name] for name in ("sent_to_delivered", "delivered_to_read")}
    row |= {f"sent_to_delivered_{p}_ms": r["sent_to_delivered_ms"].get(p) for p in PERCENTILES}
    row |= {f"delivered_to_read_{p}_ms": r["delivered_to_read_ms"].get(p) for p in PERCENTILES}
    return row | _kafka(item)


ROWS = {"status_change": change_row, "metric_window": metric_row, "cohort_funnel": funnel_row}


def event_date(item: Decoded) -> str:
    """The UTC date a record belongs to: a window's or a cohort's start (every revision of a
    cohort in one directory); a change's latest status time.

    A change without any status time (none is expected) falls back to the Kafka timestamp.
    """
    if item.schema == "metric_window":
        millis = item.record["window_start"]
    elif item.schema == "cohort_funnel":
        millis = item.record["cohort_start"]
    else:
        times = [item.record.get(name) for name in _CHANGE_TIMES]
        millis = max((t for t in times if t is not None), default=item.timestamp or 0)
    return dt.datetime.fromtimestamp(millis / 1000, tz=dt.UTC).date().isoformat()


@dataclasses.dataclass(frozen=True, slots=True)
class PartFile:
    """Where one exported offset range lives."""

    topic: str
    date: str
    partition: int
    first: int
    last: int

    def path(self, out: Path) -> Path:
        """`<out>/topic=<topic>/date=<date>/part-<partition>-<first>-<last>.parquet`."""
        name = f"part-{self.partition:04d}-{self.first:020d}-{self.last:020d}.parquet"
        return out / f"topic={self.topic}" / f"date={self.date}" / name


def last_exported(out: Path, topic: str, partition: int) -> int | None:
    """The highest offset of `partition` already on disk (None when nothing is)."""
    last: int | None = None
    for path in (out / f"topic={topic}").glob(f"date=*/part-{partition:04d}-*.parquet"):
        match = _PART.match(path.name)
        if match:
            last = max(last if last is not None else -1, int(match.group(3)))
    return last


def to_table(schema: str, rows: list[dict[str, Any]]) -> pa.Table:
    """The rows of one exported schema as an Arrow table."""
    return pa.Table.from_pylist(rows, schema=SCHEMAS[schema])
