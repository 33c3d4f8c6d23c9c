"""In-memory stand-ins for the track stage's I/O (TableWriter, the producer, the outbox), for unit
tests of streams/message_ids.py and the retention indexes without a broker."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Awaitable, Iterator
from types import SimpleNamespace
from typing import Any

from streams.settings import WorkerSettings


def _done() -> asyncio.Future[None]:
    future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    future.set_result(None)
    return future


@dataclasses.dataclass
class FakeTable:
    """What MessageIds and the agents use of a TableWriter: values by partition, and the
    changelog records written (None: a tombstone)."""

    data: dict[int, dict[bytes, bytes]] = dataclasses.field(default_factory=dict)
    changelog: list[tuple[int, bytes, bytes | None]] = dataclasses.field(default_factory=list)

    def get(self, partition: int, key: bytes) -> bytes | None:
        return self.data.get(partition, {}).get(key)

    def items(self, partition: int) -> list[tuple[bytes, bytes]]:
        return list(self.data.get(partition, {}).items())

    def keys(self, partition: int) -> Iterator[bytes]:
        return iter(list(self.data.get(partition, {})))

    async def set(self, partition: int, key: bytes, value: bytes) -> Awaitable[None]:
        self.data.setdefault(partition, {})[key] = value
        self.changelog.append((partition, key, value))
        return _done()

    async def delete(self, partition: int, key: bytes) -> Awaitable[None]:
        self.data.get(partition, {}).pop(key, None)
        self.changelog.append((partition, key, None))
        return _done()

    async def persisted(self) -> None:
        return None


@dataclasses.dataclass
class FakeProducer:
    """Records what is sent: (topic, key, value, partition)."""

    sent: list[tuple[str, bytes | None, bytes, int | None]] = dataclasses.field(default_factory=list)

    async def send(
        self, topic: str, key: bytes | None, value: bytes, partition: int | None, *_: Any
    ) -> Awaitable[None]:
        self.sent.append((topic, key, value, partition))
        return _done()

    def to(self, topic: str) -> list[tuple[bytes | None, bytes, int | None]]:
        """What was sent to `topic`."""
        return [(key, value, partition) for t, key, value, partition in self.sent if t == topic]


class FakeOutbox:
    """The agents' Outbox: deliveries are collected and never awaited."""

    def __init__(self) -> None:
        self.deliveries: list[Awaitable[object]] = []

    def add(self, delivery: Awaitable[object]) -> None:
        self.deliveries.append(delivery)


def fake_topology(**settings: Any) -> Any:
    """What MessageIds reads of a Topology: the settings and the app's producer."""
    return SimpleNamespace(settings=WorkerSettings(**settings), app=SimpleNamespace(producer=FakeProducer()))
