"""The core's murmur2 gives aiokafka's (and so the Java client's) partition for every key."""

from __future__ import annotations

import random

from aiokafka.partitioner import murmur2 as aiokafka_murmur2

from streams.core.partitioning import key_partition, murmur2


def test_murmur2_matches_aiokafka() -> None:
    rng = random.Random(20)
    for length in range(64):
        for _ in range(16):
            data = rng.randbytes(length)
            assert murmur2(data) == aiokafka_murmur2(data)


def test_key_partition_of_known_keys() -> None:
    for key in (b"", b"a", b"meta:123:wamid.x", "ünï".encode()):
        assert key_partition(key, 12) == (aiokafka_murmur2(key) & 0x7FFFFFFF) % 12
