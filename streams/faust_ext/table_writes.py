"""Table reads and writes without Faust's per-record machinery, with the same guarantees.

A Faust table write (`table[key] = value`) puts the value into the store and hands the
changelog record to `send_soon`, whose 100-message buffer is drained one record at a time by
a background task; the changelog's delivery is then only waited for by the next offset
commit. And Faust's stores find a key's partition through the *current event*
(`faust.streams.current_event`), which a batch of records from several partitions does not
have. Here every read and write names its partition: the value goes into that partition's
part of the store (the RocksDB database of the partition, or the memory store's dict with
the key's partition noted, so that Faust drops it when the partition leaves this worker),
and the changelog record goes straight to the producer into the same partition (the one
Faust would choose: the table is co-partitioned with its source topic). Deliveries are
awaited by the caller with the batch's other outputs (streams/agents.py, Outbox), before the
batch's offsets are acknowledged; then the store's persisted offset moves on, as Faust's own
send callback does, so a restart with a RocksDB store replays only what came after it.

Written against faust-streaming 0.15.3's stores (`faust.stores.memory.Store.data` and
`_key_partition`, `faust.stores.rocksdb.Store._db_for_partition` and `_key_index`; the release
streams/faust_ext/faust_version.py requires). Upstream: table writes from a batch of events, which Faust
refuses ("Cannot modify table key from outside of stream iteration"), are faust-streaming issue
#497 (open); for the changelog records that no write waits for, no upstream issue found. Why:
docs/architecture.md.
"""

from __future__ import annotations

from collections.abc import Awaitable, Iterator
from typing import Any, cast

from faust.stores.memory import Store as MemoryStore
from faust.types import TP, AppT, StoreT, TableT
from faust.types.tuples import RecordMetadata


class _PartitionedStore:
    """A store's values by partition, whatever the store (memory or RocksDB)."""

    def __init__(self, store: StoreT[bytes, bytes | None]) -> None:
        self._store: Any = store
        self._memory = isinstance(store, MemoryStore)

    def get(self, partition: int, key: bytes) -> bytes | None:
        if self._memory:
            value: bytes | None = self._store.data.get(key)
            return value
        found: bytes | None = self._store._db_for_partition(partition).get(key)
        return found

    def items(self, partition: int) -> list[tuple[bytes, bytes]]:
        store = self._store
        if self._memory:
            data = store.data
            return [(k, data[k]) for k, p in list(store._key_partition.items()) if p == partition and data.get(k)]
        return list(store._visible_items(store._db_for_partition(partition)))

    def keys(self, partition: int) -> Iterator[bytes]:
        store = self._store
        if self._memory:
            data = store.data
            return iter([k for k, p in list(store._key_partition.items()) if p == partition and k in data])
        keys: Iterator[bytes] = store._visible_keys(store._db_for_partition(partition))
        return keys

    def set(self, partition: int, key: bytes, value: bytes) -> None:
        store = self._store
        if self._memory:
            store.data[key] = value
            store._key_partition[key] = partition  # Faust drops revoked partitions' keys by it
            return
        store._key_index[key] = partition
        store._db_for_partition(partition).put(key, value)

    def delete(self, partition: int, key: bytes) -> None:
        store = self._store
        if self._memory:
            store.data.pop(key, None)
            store._key_partition.pop(key, None)
            return
        store._key_index.pop(key, None)
        store._db_for_partition(partition).delete(key)


class TableWriter:
    """Reads one table's values and writes them with their changelog records, by partition."""

    def __init__(self, app: AppT, table: TableT[bytes, bytes | None]) -> None:
        self._producer = app.producer
        self._faust_store = cast(StoreT[bytes, bytes | None], table.data)
        self._store = _PartitionedStore(self._faust_store)
        self._topic = table.changelog_topic.get_topic_name()
        # The newest changelog delivery per partition, whose offset becomes the persisted one.
        self._newest: dict[int, Awaitable[RecordMetadata]] = {}

    def get(self, partition: int, key: bytes) -> bytes | None:
        """The stored value of `key`, which lives in `partition`."""
        return self._store.get(partition, key)

    def items(self, partition: int) -> list[tuple[bytes, bytes]]:
        """Every (key, value) stored in `partition`."""
        return self._store.items(partition)

    def keys(self, partition: int) -> Iterator[bytes]:
        """Every key stored in `partition`, read as iterated (a RocksDB partition is not copied
        into memory: iterate without awaiting in between)."""
        return self._store.keys(partition)

    async def set(self, partition: int, key: bytes, value: bytes) -> Awaitable[RecordMetadata]:
        """Store `value` and send its changelog record; returns the delivery to await."""
        self._store.set(partition, key, value)
        return await self._send(partition, key, value)

    async def delete(self, partition: int, key: bytes) -> Awaitable[RecordMetadata]:
        """Remove `key` and send its tombstone; returns the delivery to await."""
        self._store.delete(partition, key)
        return await self._send(partition, key, None)

    async def _send(self, partition: int, key: bytes, value: bytes | None) -> Awaitable[RecordMetadata]:
        delivery = await self._producer.send(self._topic, key, value, partition, None, None)
        self._newest[partition] = delivery
        return delivery

    async def persisted(self) -> None:
        """Once the deliveries are acknowledged: remember how far the store is written."""
        newest, self._newest = self._newest, {}
        for partition, delivery in newest.items():
            metadata = await delivery  # a future: already resolved by the outbox's flush
            self._faust_store.set_persisted_offset(TP(self._topic, partition), metadata.offset)
