"""Table writes without Faust's per-write machinery, with the same guarantees.

A Faust table write (`table[key] = value`) puts the value into the store and hands the
changelog record to `send_soon`, whose 100-message buffer is drained one record at a time by
a background task; the changelog's delivery is then only waited for by the next offset
commit. Here the value goes into the same store and the changelog record goes straight to
the producer into the partition of the record being processed (the partition Faust would
choose: the table is co-partitioned with its source topic), and its delivery is awaited with
the record's other outputs (streams/agents.py, Outbox). After the delivery the store's
persisted offset moves on, as Faust's own send callback does, so a restart with a RocksDB
store replays only what came after it.
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import cast

from faust.types import TP, AppT, StoreT, TableT
from faust.types.tuples import RecordMetadata


class TableWriter:
    """Writes one table's values and their changelog records for the current record."""

    def __init__(self, app: AppT, table: TableT[bytes, bytes | None]) -> None:
        self._producer = app.producer
        self._store = cast(StoreT[bytes, bytes | None], table.data)
        self._topic = table.changelog_topic.get_topic_name()
        # The newest changelog delivery per partition, whose offset becomes the persisted one.
        self._newest: dict[int, Awaitable[RecordMetadata]] = {}

    async def set(self, partition: int, key: bytes, value: bytes) -> Awaitable[RecordMetadata]:
        """Store `value` and send its changelog record; returns the delivery to await."""
        self._store[key] = value
        return await self._send(partition, key, value)

    async def delete(self, partition: int, key: bytes) -> Awaitable[RecordMetadata]:
        """Remove `key` and send its tombstone; returns the delivery to await."""
        if key in self._store:
            del self._store[key]
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
            self._store.set_persisted_offset(TP(self._topic, partition), metadata.offset)
