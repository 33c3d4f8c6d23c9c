"""Waiting on conditions, reading topics and writing raw envelopes, with a deadline on everything."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

import aiohttp
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from schemas.envelope import RawWebhook
from schemas.settings import KafkaSettings

T = TypeVar("T")


def faults_pythonpath() -> str:
    """PYTHONPATH for a process that loads the fault injection (faults/sitecustomize.py)."""
    faults = Path(__file__).parent / "faults"
    return os.pathsep.join(p for p in (str(faults), os.environ.get("PYTHONPATH", "")) if p)


async def wait_until(probe: Callable[[], Awaitable[T | None]], *, within: float, what: str) -> T:
    """Call `probe` until it returns something other than None; fail after `within` seconds."""
    deadline = time.monotonic() + within
    while True:
        try:
            # A probe that hangs (a request to a worker that is being killed) must not outlive
            # the deadline.
            result = await asyncio.wait_for(probe(), timeout=max(deadline - time.monotonic(), 0.1))
        except TimeoutError:
            result = None
        if result is not None:
            return result
        if time.monotonic() > deadline:
            msg = f"timed out after {within:.0f}s waiting for {what}"
            raise AssertionError(msg)
        await asyncio.sleep(0.1)  # poll interval of the condition, not a synchronisation


async def consume(
    bootstrap: str, topic: str, *, until: Callable[[list[tuple[bytes | None, bytes]]], bool], within: float
) -> list[tuple[bytes | None, bytes]]:
    """Read `topic` from the beginning until `until(records)` holds; fail after `within` seconds."""
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest", group_id=None)
    await consumer.start()
    records: list[tuple[bytes | None, bytes]] = []
    deadline = time.monotonic() + within
    try:
        while not until(records):
            if time.monotonic() > deadline:
                msg = f"timed out after {within:.0f}s reading {topic}: {len(records)} records so far"
                raise AssertionError(msg)
            batches = await consumer.getmany(timeout_ms=200)
            for batch in batches.values():
                records.extend((r.key, r.value) for r in batch)
    finally:
        await consumer.stop()
    return records


Records = list[tuple[bytes | None, bytes]]


async def read_topic(
    bootstrap: str, topic: str, *, until: Callable[[Records], bool] | None = None, within: float = 60
) -> Records:
    """Read `topic` from the beginning until `until(records)` holds (by default: until the end
    offsets of the moment are reached) or `within` seconds pass; returns what was read either
    way (the caller's figures say what is missing)."""
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest", group_id=None)
    await consumer.start()
    records: Records = []
    next_offsets: dict[TopicPartition, int] = {}
    deadline = time.monotonic() + within
    try:
        if until is None:
            partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
            ends = await consumer.end_offsets(partitions)

            def at_end(_records: Records) -> bool:
                return all(next_offsets.get(tp, 0) >= end for tp, end in ends.items())

            until = at_end
        while not until(records) and time.monotonic() < deadline:
            batches = await consumer.getmany(timeout_ms=200)
            for tp, batch in batches.items():
                records.extend((r.key, r.value) for r in batch)
                if batch:
                    next_offsets[tp] = batch[-1].offset + 1
    finally:
        await consumer.stop()
    return records


async def metrics_text(base_url: str) -> str | None:
    """A process's GET /metrics page (None when it does not answer within 10 s)."""
    try:
        async with (
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as http,
            http.get(f"{base_url}/metrics") as response,
        ):
            return await response.text()
    except (aiohttp.ClientError, TimeoutError):
        return None


async def post(settings: KafkaSettings, *webhooks: RawWebhook) -> None:
    """Write envelopes to wa.webhooks.raw as the receiver does."""
    producer = AIOKafkaProducer(bootstrap_servers=settings.bootstrap_servers, acks="all", enable_idempotence=True)
    await producer.start()
    try:
        for webhook in webhooks:
            await producer.send(settings.topics.raw, webhook.to_avro(), key=webhook.request_id.encode())
        await producer.flush()
    finally:
        await producer.stop()
