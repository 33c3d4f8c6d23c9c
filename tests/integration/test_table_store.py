"""The bulk changelog load of the in-memory table store, against the real broker."""

from __future__ import annotations

import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.admin import NewTopic
from faust.types import TP

from schemas.settings import KafkaSettings
from schemas.topics import ensure_topics
from streams.faust_ext.table_store import _PRELOADED, preload, read_changelog


async def test_the_load_applies_every_record_in_order_and_reports_the_last_offset_held(
    kafka_settings: KafkaSettings, unique_id: str
) -> None:
    bootstrap = kafka_settings.bootstrap_servers
    topic = f"statusflow-{unique_id}-message_state-changelog"
    compacted = NewTopic(topic, num_partitions=3, replication_factor=1, topic_configs={"cleanup.policy": "compact"})
    await ensure_topics(kafka_settings, [compacted])  # waits for the partitions' leaders too
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        # Partition 0: overwrites and a tombstone; partition 1: 2,500 keys (several fetches);
        # partition 2: nothing.
        for key, value in [(b"a", b"1"), (b"b", b"1"), (b"a", b"2"), (b"b", None), (b"c", b"1")]:
            await producer.send_and_wait(topic, value, key=key, partition=0)
        for i in range(2_500):
            producer_future = await producer.send(topic, b"v%d" % i, key=b"k%d" % i, partition=1)
        await producer_future
    finally:
        await producer.stop()

    table: dict[bytes, bytes] = {}
    partition_of: dict[bytes, int] = {}

    def apply(partition: int, key: bytes, value: bytes | None) -> None:
        if value is None:
            table.pop(key, None)
        else:
            table[key] = value
        partition_of[key] = partition

    held = await read_changelog(bootstrap, topic, apply)

    assert held == {TP(topic, 0): 4, TP(topic, 1): 2_499, TP(topic, 2): -1}
    assert table[b"a"] == b"2"
    assert b"b" not in table
    assert table[b"c"] == b"1"
    assert all(table[b"k%d" % i] == b"v%d" % i for i in range(2_500))
    assert len(table) == 2 + 2_500
    assert {partition_of[b"a"], partition_of[b"k7"]} == {0, 1}


async def test_a_changelog_that_cannot_be_read_is_left_to_faust_and_the_worker_starts(
    kafka_settings: KafkaSettings, unique_id: str, caplog: pytest.LogCaptureFixture
) -> None:
    # The bulk load is a speed-up only: a missing topic (or a broker in trouble) must not stop
    # the worker; Faust then recovers the table record by record, as it would without the load.
    await ensure_topics(kafka_settings)
    missing = f"statusflow-{unique_id}-nothing-changelog"
    await preload(kafka_settings.bootstrap_servers, {f"nothing-{unique_id}": missing}, timeout_s=5)
    assert f"nothing-{unique_id}" not in _PRELOADED
    assert f"changelog {missing} not loaded in bulk" in caplog.text
