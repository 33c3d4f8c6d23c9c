"""Memory per tracked message in the table store, and a worker's table recovery from its changelog."""

from __future__ import annotations

import asyncio
import contextlib
import statistics
import time
import tracemalloc
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.partitioner import murmur2

from bench.generator import Reference
from bench.harness import PARTITIONS, RESULTS, create_topics, produce, spawn, stop, unique, worker_env
from devkit.kafka_local import free_port
from streams.core.records import message_path, state_to_bytes
from streams.domain.events import message_key, parse_message_key
from streams.topology import STATE_TABLE


def key_partition(key: bytes, partitions: int) -> int:
    """The partition the default (Java-compatible) partitioner gives `key`."""
    partition: int = (murmur2(key) & 0x7FFFFFFF) % partitions
    return partition


def memory_per_message(ref: Reference) -> dict[str, Any]:
    """Store bytes (key + value, as in the changelog) per tracked message, and the heap a memory store uses."""
    items = [(key.encode(), state_to_bytes(state)) for key, state in ref.states.items()]
    sizes = sorted(len(k) + len(v) for k, v in items)
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    # What Faust's memory store holds: a dict of key bytes → value bytes (fresh copies).
    store = {bytes(bytearray(k)): bytes(bytearray(v)) for k, v in items}
    heap = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    del store
    return {
        "messages": len(items),
        "store_bytes_mean": round(statistics.fmean(sizes), 1),
        "store_bytes_p50": sizes[len(sizes) // 2],
        "store_bytes_p99": sizes[int(len(sizes) * 0.99)],
        "store_bytes_max": sizes[-1],
        "key_bytes_mean": round(statistics.fmean(len(k) for k, _ in items), 1),
        "value_bytes_mean": round(statistics.fmean(len(v) for _, v in items), 1),
        "memory_store_heap_bytes_per_message": round(heap / len(items), 1),
    }


def changelog_records(ref: Reference, count: int) -> Iterator[tuple[bytes, bytes]]:
    """`count` distinct messages whose states are the realistic states of the fold, cycled."""
    templates = [(s.provider, s.channel, s.message_id, state_to_bytes(s)) for s in ref.states.values()]
    for i in range(count):
        provider, channel, message_id, value = templates[i % len(templates)]
        yield message_key(provider, channel, f"{message_id}.r{i}").encode(), value


async def _create_changelog(bootstrap: str, name: str) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics(
            [
                NewTopic(
                    name, num_partitions=PARTITIONS, replication_factor=1, topic_configs={"cleanup.policy": "compact"}
                )
            ]
        )
    finally:
        await admin.close()


def _answers(url: str) -> bool:
    with (
        contextlib.suppress(urllib.error.URLError, ConnectionError, TimeoutError),
        urllib.request.urlopen(url, timeout=2) as response,
    ):
        return bool(response.status == 200)
    return False


async def recovery(bootstrap: str, ref: Reference, count: int, *, tmp: Path, within_s: float) -> dict[str, Any]:
    """Write `count` tracked messages to a fresh worker's changelog; time start → every partition answers."""
    prefix = unique("recovery")
    app_id = prefix
    settings = await create_topics(bootstrap, prefix + ".")
    changelog = f"{app_id}-{STATE_TABLE}-changelog"
    await _create_changelog(bootstrap, changelog)
    written_at = time.monotonic()
    last_of_partition: dict[int, bytes] = {}

    def remember() -> Iterator[tuple[bytes, bytes]]:
        for key, value in changelog_records(ref, count):
            last_of_partition[key_partition(key, PARTITIONS)] = key
            yield key, value

    written = await produce(bootstrap, changelog, remember())
    produce_s = time.monotonic() - written_at
    port = free_port()
    probes = []
    for key in last_of_partition.values():
        probes.append(f"http://127.0.0.1:{port}{message_path(parse_message_key(key))}")
    env = worker_env(settings, app_id, port, tmp / app_id)
    started = time.monotonic()
    proc = spawn(["-m", "streams"], env, RESULTS / "logs" / f"{app_id}.log")
    pending: Sequence[str] = probes
    try:
        while pending and time.monotonic() - started < within_s and proc.poll() is None:
            pending = [url for url in pending if not await asyncio.to_thread(_answers, url)]
            if pending:
                await asyncio.sleep(0.2)
        elapsed = time.monotonic() - started
    finally:
        stop(proc)
    return {
        "tracked_messages": written,
        "changelog_produce_s": round(produce_s, 2),
        "recovered": not pending,
        "recovery_s": round(elapsed, 2) if not pending else None,
        "messages_per_s": round(written / elapsed, 1) if not pending else None,
        "projected_1m_s": round(elapsed * 1_000_000 / written, 1) if not pending else None,
    }
