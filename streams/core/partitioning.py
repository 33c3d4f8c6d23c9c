"""Which partition a key lands in: the same answer as the Java client and aiokafka.

murmur2 is written out here, as aiokafka and kafka-python write it (Apache-2.0; after the Java
client's org.apache.kafka.common.utils.Utils.murmur2), so that the pure core imports no Kafka
client; tests/unit/test_purity.py checks that, and tests/unit/test_partitioning.py that it gives
aiokafka's answer.
"""

from __future__ import annotations

_SEED = 0x9747B28C
_M = 0x5BD1E995
_R = 24
_MASK = 0xFFFFFFFF


def murmur2(data: bytes) -> int:
    """MurmurHash2 of `data`, as Kafka's default partitioner computes it."""
    length = len(data)
    h = _SEED ^ length
    for i in range(length // 4):
        i4 = i * 4
        k = data[i4] + (data[i4 + 1] << 8) + (data[i4 + 2] << 16) + (data[i4 + 3] << 24)
        k = (k * _M) & _MASK
        k ^= k >> _R
        k = (k * _M) & _MASK
        h = ((h * _M) & _MASK) ^ k
    extra = length % 4
    tail = length & ~3
    if extra >= 3:
        h ^= data[tail + 2] << 16
    if extra >= 2:
        h ^= data[tail + 1] << 8
    if extra >= 1:
        h ^= data[tail]
        h = (h * _M) & _MASK
    h ^= h >> 13
    h = (h * _M) & _MASK
    h ^= h >> 15
    return h


def key_partition(key: bytes, partitions: int) -> int:
    """murmur2 of the key, positive, modulo the partition count (Kafka's default partitioner)."""
    partition: int = (murmur2(key) & 0x7FFFFFFF) % partitions
    return partition
