"""The in-memory table store, filled from its changelog in bulk before Faust starts.

Faust restores a table one changelog record at a time through its consumer, conductor and
recovery queue (about 100 µs a record here, so 1M tracked messages took 110 s). Before the
worker starts, `preload` reads every changelog partition with a plain consumer in large
batches instead; the store adopts that data at its first rebalance and tells Faust how far it
has read (`persisted_offset`, the same contract as Faust's RocksDB store), so Faust's recovery
only replays what was written after that point. (Loading inside Faust's rebalance callback
instead slowed Faust's own offset requests that follow by 1.5 s each.)

What the store claims to hold must be true at every moment, or Faust would skip records it
needs: a partition's offset is forgotten when the partition is revoked and when Faust drops
its keys after a recovery (Faust's memory store keeps only active partitions), and it is only
ever moved on for records whose values the store holds.

Corrects faust-streaming 0.15.3's table recovery (the release streams/faust_ext/faust_version.py
requires) through its memory store's internals: `faust.stores.memory.Store.data` and
`_key_partition`, the `persisted_offset` contract, and the store registry `STORES`. Upstream: no
upstream issue found for the per-record cost of recovering a memory table. Why:
docs/architecture.md.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import Callable

from aiokafka import AIOKafkaConsumer
from aiokafka.errors import KafkaError
from faust.stores import STORES
from faust.stores.memory import Store as MemoryStore
from faust.types import TP

from schemas.topics import partitions_of

log = logging.getLogger(__name__)

STORE_SCHEME = "statusflow-memory"


@dataclasses.dataclass
class Preloaded:
    """One table's changelog as read before the worker started."""

    data: dict[bytes, bytes] = dataclasses.field(default_factory=dict)
    partition_of: dict[bytes, int] = dataclasses.field(default_factory=dict)
    offsets: dict[TP, int] = dataclasses.field(default_factory=dict)
    records: int = 0

    def apply(self, partition: int, key: bytes, value: bytes | None) -> None:
        """One changelog record, in offset order (None deletes)."""
        self.records += 1
        if value is None:
            self.data.pop(key, None)
            self.partition_of.pop(key, None)
        else:
            self.data[key] = value
            self.partition_of[key] = partition


# Filled by `preload` in the worker's entry point, adopted (and removed) by each table's store.
_PRELOADED: dict[str, Preloaded] = {}


async def preload(bootstrap: str, changelogs: dict[str, str], *, timeout_s: float = 30.0) -> None:
    """Read each table's changelog (table name -> topic) in full, for the stores to adopt.

    Only a speed-up: when a changelog cannot be read (broker trouble, a topic that is not
    there), the worker starts anyway and Faust recovers that table itself.
    """
    for table, topic in changelogs.items():
        started = time.monotonic()
        loaded = Preloaded()
        try:
            loaded.offsets = await read_changelog(bootstrap, topic, loaded.apply, timeout_s=timeout_s)
        except (KafkaError, TimeoutError) as exc:
            log.warning("table %s: changelog %s not loaded in bulk (%r); Faust recovers it", table, topic, exc)
            continue
        _PRELOADED[table] = loaded
        log.info(
            "table %s: %s changelog records of %s partitions loaded in %.2fs",
            table,
            loaded.records,
            len(loaded.offsets),
            time.monotonic() - started,
        )


class BulkLoadedMemoryStore(MemoryStore[bytes, bytes]):
    """Faust's memory store that starts from the preloaded changelog."""

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
        """Runs before Faust's recovery reads `persisted_offset`."""
        await super().on_rebalance(assigned, revoked, newly_assigned, generation_id)
        for tp in revoked:
            self._held.pop(tp, None)
        loaded = _PRELOADED.pop(self.table.name, None)
        if loaded is not None:
            self.data.update(loaded.data)
            self._key_partition.update(loaded.partition_of)
            self._held.update(loaded.offsets)

    async def on_recovery_completed(self, active_tps: set[TP], standby_tps: set[TP]) -> None:
        """Faust's memory store drops the keys of partitions that are not active: forget them too."""
        await super().on_recovery_completed(active_tps, standby_tps)
        for tp in list(self._held):
            if tp not in active_tps:
                del self._held[tp]


async def read_changelog(
    bootstrap: str, topic: str, apply: Callable[[int, bytes, bytes | None], None], *, timeout_s: float = 30.0
) -> dict[TP, int]:
    """Read every partition of `topic` from its start to the end it has now, handing each record
    to `apply`; TimeoutError when the topic's partitions and ends are not known within `timeout_s`.

    Returns, per partition, the offset of the last record below that end (-1 when empty: Faust
    then seeks to the start, where there is nothing).
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
        async with asyncio.timeout(timeout_s):
            # The topic's own partition count: a changelog made by an older configuration may
            # differ from today's setting (Faust then refuses to start, with its own message).
            parts = await partitions_of(bootstrap, [topic])
            if not parts:
                msg = f"changelog {topic} has no partitions in the broker's metadata"
                raise TimeoutError(msg)
            consumer.assign(parts)
            ends = await consumer.end_offsets(parts)
            await consumer.seek_to_beginning(*parts)
        pending = {tp for tp in parts if ends[tp] > 0}
        while pending:
            batches = await consumer.getmany(*pending, timeout_ms=1000, max_records=50_000)
            for tp, batch in batches.items():
                end = ends[tp]
                for record in batch:
                    if record.offset < end:
                        apply(tp.partition, record.key, record.value)
            for tp in list(pending):
                if await consumer.position(tp) >= ends[tp]:
                    pending.discard(tp)
        return {TP(tp.topic, tp.partition): ends[tp] - 1 for tp in parts}
    finally:
        await consumer.stop()


def register() -> str:
    """Make the store reachable as `<STORE_SCHEME>://` for Faust; returns that URL."""
    STORES.aliases[STORE_SCHEME] = f"{__name__}:BulkLoadedMemoryStore"
    return f"{STORE_SCHEME}://"
