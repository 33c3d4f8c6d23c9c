"""The in-memory table store, filled from its changelog in bulk before Faust's own recovery.

Faust restores a table one changelog record at a time through its consumer, conductor and
recovery queue (about 100 µs a record here, so 1M tracked messages took 110 s). This store reads
the changelog partitions it becomes active for with a plain consumer in large batches instead,
then tells Faust how far it has read (`persisted_offset`, the same contract as Faust's RocksDB
store), so Faust's recovery only replays what was written after that point.

What the store claims to hold must be true at every moment, or Faust would skip records it
needs: a partition's offset is forgotten when the partition is revoked and when Faust drops
its keys after a recovery (Faust's memory store keeps only active partitions), and it is only
ever moved on for records whose values the store holds.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError
from faust.stores import STORES
from faust.stores.memory import Store as MemoryStore
from faust.types import TP

log = logging.getLogger(__name__)

STORE_SCHEME = "statusflow-memory"


class BulkLoadedMemoryStore(MemoryStore[bytes, bytes]):
    """Faust's memory store plus a bulk load of newly active changelog partitions."""

    def __post_init__(self) -> None:
        super().__post_init__()
        self._held: dict[TP, int] = {}

    def persisted_offset(self, tp: TP) -> int | None:
        """The offset of the last changelog record this store holds for `tp` (None: unknown)."""
        return self._held.get(tp)

    def set_persisted_offset(self, tp: TP, offset: int) -> None:
        """Called after this worker's own changelog writes are acknowledged: the store holds
        every earlier record of a partition it owns."""
        if tp in self._held:
            self._held[tp] = max(self._held[tp], offset)

    async def on_rebalance(
        self, assigned: set[TP], revoked: set[TP], newly_assigned: set[TP], generation_id: int = 0
    ) -> None:
        """Runs before Faust's recovery reads `persisted_offset`: load what is newly active."""
        await super().on_rebalance(assigned, revoked, newly_assigned, generation_id)
        for tp in revoked:
            self._held.pop(tp, None)
        changelog = self.table.changelog_topic.get_topic_name()
        actives = {tp for tp in self.app.assignor.assigned_actives() if tp.topic == changelog}
        missing = sorted(actives - self._held.keys())
        if missing:
            await self._load(missing)

    async def on_recovery_completed(self, active_tps: set[TP], standby_tps: set[TP]) -> None:
        """Faust's memory store drops the keys of partitions that are not active: forget them too."""
        await super().on_recovery_completed(active_tps, standby_tps)
        for tp in list(self._held):
            if tp not in active_tps:
                del self._held[tp]

    async def _load(self, tps: list[TP]) -> None:
        started = time.monotonic()
        try:
            held, records = await read_changelog(_bootstrap(self.app.conf.broker), tps, self._apply)
        except KafkaError as exc:
            # Faust's own recovery reads these partitions instead: slower, as correct.
            log.warning("bulk load of %s failed (%r); Faust recovers them record by record", tps, exc)
            return
        self._held.update(held)
        log.info(
            "table %s: %s changelog records of %s partitions loaded in %.2fs",
            self.table.name,
            records,
            len(tps),
            time.monotonic() - started,
        )

    def _apply(self, partition: int, key: bytes, value: bytes | None) -> None:
        if value is None:
            self.data.pop(key, None)
            self._key_partition.pop(key, None)
        else:
            self.data[key] = value
            self._key_partition[key] = partition


def _bootstrap(brokers: Iterable[object]) -> str:
    return ",".join(f"{url.host}:{url.port}" for url in brokers)  # type: ignore[attr-defined]


async def read_changelog(
    bootstrap: str, tps: list[TP], apply: Callable[[int, bytes, bytes | None], None]
) -> tuple[dict[TP, int], int]:
    """Read `tps` from their start to the end they have now, handing every record to `apply`.

    Returns, per partition, the offset of the last record below that end (-1 when empty: Faust
    then seeks to the start, where there is nothing), and the number of records read.
    """
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        fetch_max_bytes=64 * 1024 * 1024,
        max_partition_fetch_bytes=16 * 1024 * 1024,
    )
    await consumer.start()
    try:
        parts = [TopicPartition(tp.topic, tp.partition) for tp in tps]
        consumer.assign(parts)
        ends = await consumer.end_offsets(parts)
        await consumer.seek_to_beginning(*parts)
        pending = {tp for tp in parts if ends[tp] > 0}
        read = 0
        while pending:
            batches = await consumer.getmany(*pending, timeout_ms=1000, max_records=50_000)
            for tp, batch in batches.items():
                end = ends[tp]
                for record in batch:
                    if record.offset < end:
                        apply(tp.partition, record.key, record.value)
                        read += 1
            for tp in list(pending):
                if await consumer.position(tp) >= ends[tp]:
                    pending.discard(tp)
        return {TP(tp.topic, tp.partition): ends[tp] - 1 for tp in parts}, read
    finally:
        await consumer.stop()


def register() -> str:
    """Make the store reachable as `<STORE_SCHEME>://` for Faust; returns that URL."""
    STORES.aliases[STORE_SCHEME] = f"{__name__}:BulkLoadedMemoryStore"
    return f"{STORE_SCHEME}://"
