"""Which partition a key lands in: the same answer as the Java client and aiokafka."""

from __future__ import annotations

from aiokafka.partitioner import murmur2


def key_partition(key: bytes, partitions: int) -> int:
    """murmur2 of the key, positive, modulo the partition count (Kafka's default partitioner)."""
    partition: int = (murmur2(key) & 0x7FFFFFFF) % partitions
    return partition
