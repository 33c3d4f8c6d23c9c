"""Records published during one pass of the event loop leave as one batch per topic.

Every `AIOKafkaProducer.send` costs a partitioner call (a pure-Python murmur2 of the key), a
delivery future and a metadata object per record; under load that was a fifth of the
receiver's time per request. Concurrent requests reach `publish` within the same pass of the
event loop, so their records are appended to one `BatchBuilder` and sent with one
`send_batch`: one delivery for the batch, resolved for every request in it. The batch goes to
the topic's partitions in turn; raw webhooks need no key affinity (the normalize stage keys
events by message), and the key (the request id) is still on every record.
"""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
from collections.abc import Iterator

from aiokafka import AIOKafkaProducer
from aiokafka.producer.message_accumulator import BatchBuilder


@dataclasses.dataclass
class _OpenBatch:
    builder: BatchBuilder
    waiters: list[asyncio.Future[None]] = dataclasses.field(default_factory=list)


class Batcher:
    """Appends records to the open batch of their topic; the batch is sent after this loop pass."""

    def __init__(self, producer: AIOKafkaProducer) -> None:
        self._producer = producer
        self._open: dict[str, _OpenBatch] = {}
        self._partitions: dict[str, Iterator[int]] = {}
        self._sending: set[asyncio.Task[None]] = set()

    async def send(self, topic: str, key: bytes, value: bytes) -> None:
        """Return once the broker has acknowledged the batch holding this record."""
        if topic not in self._partitions:
            partitions = sorted(await self._producer.partitions_for(topic))
            self._partitions.setdefault(topic, itertools.cycle(partitions))
        loop = asyncio.get_running_loop()
        batch = self._open.get(topic)
        if batch is None or batch.builder.append(key=key, value=value, timestamp=None) is None:
            if batch is not None:  # full: send it, start another
                self._seal(topic)
            batch = self._open[topic] = _OpenBatch(self._producer.create_batch())
            loop.call_soon(self._seal, topic)
            if batch.builder.append(key=key, value=value, timestamp=None) is None:
                msg = f"a record of {len(value)} bytes does not fit in a producer batch"
                raise ValueError(msg)
        waiter: asyncio.Future[None] = loop.create_future()
        batch.waiters.append(waiter)
        await waiter

    def _seal(self, topic: str) -> None:
        batch = self._open.pop(topic, None)
        if batch is None:
            return
        task = asyncio.ensure_future(self._deliver(topic, batch))
        self._sending.add(task)  # a task nobody references can be collected mid-flight
        task.add_done_callback(self._sending.discard)

    async def _deliver(self, topic: str, batch: _OpenBatch) -> None:
        try:
            delivery = await self._producer.send_batch(batch.builder, topic, partition=next(self._partitions[topic]))
            await delivery
        except BaseException as exc:  # noqa: BLE001 - every waiter learns the batch's fate
            for waiter in batch.waiters:
                if not waiter.done():
                    waiter.set_exception(exc)
        else:
            for waiter in batch.waiters:
                if not waiter.done():
                    waiter.set_result(None)

    async def drain(self) -> None:
        """Send what is open and wait for every batch in flight (before the producer stops)."""
        for topic in list(self._open):
            self._seal(topic)
        if self._sending:
            await asyncio.gather(*self._sending, return_exceptions=True)
