"""Consumer lag of the worker's groups: end offsets against committed offsets (pure)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

# (topic, partition)
Partition = tuple[str, int]


def group_lag(
    group: str,
    end_offsets: Mapping[Partition, int],
    committed: Mapping[Partition, int],
    begin_offsets: Mapping[Partition, int],
) -> list[dict[str, Any]]:
    """Lag per topic of one group, over the partitions it has committed on.

    A partition the group never committed on counts from the start of the log (everything
    still there is unread); a topic of which it committed nothing is not the group's.
    """
    topics = {topic for topic, _ in committed}
    rows = []
    for topic in sorted(topics):
        lag = 0
        partitions = 0
        for (t, partition), end in sorted(end_offsets.items()):
            if t != topic:
                continue
            partitions += 1
            done = committed.get((t, partition), begin_offsets.get((t, partition), 0))
            lag += max(end - done, 0)
        rows.append({"group": group, "topic": topic, "lag": lag, "partitions": partitions})
    return rows


def lag_view(rows: list[dict[str, Any]], groups: list[str], *, error: str | None, at: int) -> dict[str, Any]:
    """The lag part of the snapshot: rows per group and topic, total, groups with no commits yet."""
    seen = {row["group"] for row in rows}
    return {
        "rows": rows,
        "total": sum(row["lag"] for row in rows),
        "idle_groups": [g for g in groups if g not in seen],
        "error": error,
        "updated_at": at,
    }
