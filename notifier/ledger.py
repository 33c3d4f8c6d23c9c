"""The ledger topic: a compacted record per (sink, alert id) delivered, so dedup survives restarts.

The records are encoded and read by dedup.py (Avro, and the bare keys of earlier notifiers)."""

from __future__ import annotations

import asyncio
import logging
import time

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from notifier.dedup import Delivered, ledger_records
from notifier.grouping import Notification
from schemas.topics import partitions_of

log = logging.getLogger(__name__)


async def load(bootstrap_servers: str, topic: str) -> Delivered:
    """Every (sink, alert id) on the ledger topic, read from its beginning to its current end."""
    delivered = Delivered()
    partitions = await partitions_of(bootstrap_servers, [topic])
    if not partitions:
        return delivered
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap_servers, group_id=None, enable_auto_commit=False)
    await consumer.start()
    try:
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        remaining = {tp for tp, end in ends.items() if end > 0}
        while remaining:
            batches = await consumer.getmany(*remaining, timeout_ms=1000)
            for messages in batches.values():
                for message in messages:
                    if not delivered.fold(message.key, message.value):
                        log.warning("ledger record %s@%d is not one: ignored", topic, message.offset)
            remaining = {tp for tp in remaining if await consumer.position(tp) < ends[tp]}
    finally:
        await consumer.stop()
    log.info("ledger: %d delivered alert ids from %s", len(delivered), topic)
    return delivered


class Ledger:
    """Records deliveries: in memory at once, on the topic before the records are settled."""

    def __init__(self, producer: AIOKafkaProducer, topic: str, delivered: Delivered) -> None:
        self._producer = producer
        self._topic = topic
        self.delivered = delivered

    async def record(self, notification: Notification) -> None:
        """The sink took these alerts; returns once the broker has the ledger records."""
        self.delivered.add(notification.sink, [alert.alert_id for alert in notification.alerts])
        sent = [
            await self._producer.send(self._topic, key=key, value=value)
            for key, value in ledger_records(notification, int(time.time() * 1000))
        ]
        await asyncio.gather(*sent)
