"""The stall repair: seek this worker's stalled partitions back to their committed offsets.

Corrects faust-streaming 0.15.3's skipped records (the release streams/faust_ext/faust_version.py
requires; streams/faust_ext/stalls.py says which behaviour and why no upstream issue tracks it):
it seeks through the consumer's `seek_wait` and reads the commit guard's holds
(streams/faust_ext/commits.py). The lag timer (streams/lag.py) runs it after each measurement
(streams/positions.py).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING

from aiokafka import TopicPartition
from aiokafka.errors import KafkaError
from faust.types import TP
from prometheus_client import CollectorRegistry, Counter

from streams.faust_ext.commits import GaplessCommitConsumer
from streams.faust_ext.stalls import Offsets, StalledPartitions
from streams.faust_ext.watchdog import HangWatch

if TYPE_CHECKING:
    from streams.topology import Topology

log = logging.getLogger(__name__)


REPAIRS_COUNTER = "statusflow_worker_stalled_partition_repairs"


def repairs_counter(registry: CollectorRegistry) -> Counter:
    """Seeks back to the committed offset of a stalled partition (streams/faust_ext/stalls.py)."""
    return Counter(
        REPAIRS_COUNTER,
        "Partitions re-read from their committed offset after records behind it stayed unprocessed.",
        ["topic"],
        registry=registry,
    )


async def repair_stalled(
    t: Topology,
    stalled: StalledPartitions,
    offsets: Mapping[TopicPartition, Offsets],
    repairs: Counter,
    hangs: HangWatch | None = None,
) -> None:
    """Seek this worker's stalled partitions back to their committed offsets; tell `hangs` what
    waits on them and what was processed, so that agents that stopped are found."""
    app = t.app
    if app.rebalancing or app.in_recovery:
        stalled.reset()  # positions move and restart in a rebalance: start watching afresh
        if hangs is not None:
            hangs.forget_partitions()
        return
    assigned = set(app.consumer.assignment())
    mine = {tp: where for tp, where in offsets.items() if TP(tp.topic, tp.partition) in assigned}
    consumer = app.consumer
    if isinstance(consumer, GaplessCommitConsumer):
        # The group resumes no lower than this: it bounds the consumer's first commit too.
        for tp, where in mine.items():
            consumer.raise_floor(TP(tp.topic, tp.partition), where.position)
        # A record skipped behind processed ones is known at once, without waiting for a stall;
        # two commit intervals let a hold that resolves itself (a rebalance's leftovers) clear.
        held_s = max(t.settings.lag_interval_s, 2 * t.settings.commit_interval_s)
        for skipped_tp, offset in consumer.skipped(older_than_s=held_s).items():
            log.warning(
                "%s[%s]: record at offset %s skipped while later ones were processed; reading again from there",
                skipped_tp.topic,
                skipped_tp.partition,
                offset,
            )
            await _read_again(t, repairs, skipped_tp, offset)
    counts = consumer.processed if isinstance(consumer, GaplessCommitConsumer) else {}
    processed = {tp: counts.get(TP(tp.topic, tp.partition), 0) for tp in mine}
    if hangs is not None and isinstance(consumer, GaplessCommitConsumer):  # counts only it keeps
        hangs.observe_partitions({tp: where.behind for tp, where in mine.items()}, processed)
    for tp, offset in stalled.observe(mine, time.monotonic(), processed):
        log.warning(
            "%s[%s]: %s records behind committed offset %s and none processed for %ss; reading them again from there",
            tp.topic,
            tp.partition,
            mine[tp].behind,
            offset,
            t.settings.stalled_partition_s,
        )
        await _read_again(t, repairs, TP(tp.topic, tp.partition), offset)


async def _read_again(t: Topology, repairs: Counter, tp: TP, offset: int) -> None:
    """Count the repair and seek `tp` back to `offset`; seek_wait runs in the consumer's own
    thread and resets its read offset for the partition, so the records are delivered again.

    A rebalance can take the partition away between the measurement and the seek: the new
    owner reads it from the committed offset anyway, so that seek is dropped (an exception in
    a Faust timer would crash the worker: the two-worker bench saw it)."""
    if tp not in t.app.consumer.assignment() or t.app.rebalancing:
        log.info("%s[%s]: not read again from %s, no longer assigned to this worker", tp.topic, tp.partition, offset)
        return
    try:
        await t.app.consumer.seek_wait({tp: offset})
    except (KafkaError, TimeoutError) as exc:  # IllegalStateError: unassigned meanwhile
        log.warning("%s[%s]: not read again from %s (%r)", tp.topic, tp.partition, offset, exc)
        return
    repairs.labels(topic=tp.topic).inc()
