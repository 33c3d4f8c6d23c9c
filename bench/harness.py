"""Shared plumbing of the benchmarks: the broker, topics, preloading, processes and watching outputs."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from bench.generator import FinalStatus
from devkit import kafka_local
from schemas.settings import KafkaSettings, TopicNames
from schemas.topics import ensure_topics

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "bench" / "results"
PARTITIONS = 4


class Budget:
    """The run's time budget: parts scale themselves down to what is left.

    `reserved` seconds are held back for a part that runs later (the full-stack part): the parts
    before it see less left, and that part releases the reserve when it starts.
    """

    def __init__(self, total_s: float, reserved: float = 0.0) -> None:
        self.total_s = total_s
        self.reserved = reserved
        self.started = time.monotonic()

    def elapsed(self) -> float:
        """Seconds since the run started."""
        return time.monotonic() - self.started

    def left(self) -> float:
        """Seconds left (less what is reserved)."""
        return self.total_s - self.reserved - self.elapsed()

    def release(self) -> None:
        """Give the reserve to whoever asks next."""
        self.reserved = 0.0


@contextlib.contextmanager
def broker_process() -> Iterator[kafka_local.Broker]:
    """A fresh local broker on a free port with a temporary data dir (its pid: the soak samples it)."""
    data_dir = Path(tempfile.mkdtemp(prefix="statusflow-bench-kafka-"))
    started = kafka_local.start(port=kafka_local.free_port(), data_dir=data_dir, timeout=180)
    try:
        yield started
    finally:
        started.stop()
        shutil.rmtree(data_dir, ignore_errors=True)


@contextlib.contextmanager
def broker() -> Iterator[str]:
    """A fresh local broker on a free port with a temporary data dir; yields its bootstrap address."""
    with broker_process() as started:
        yield started.bootstrap


def unique(label: str) -> str:
    """A short unique name for topics, groups and app ids of one run."""
    return f"bench-{label}-{uuid.uuid4().hex[:8]}"


async def create_topics(bootstrap: str, prefix: str, partitions: int = PARTITIONS) -> KafkaSettings:
    """Every statusflow topic behind `prefix`, created on the broker."""
    settings = KafkaSettings(bootstrap_servers=bootstrap, topics=TopicNames().prefixed(prefix), partitions=partitions)
    await ensure_topics(settings)
    return settings


async def produce(
    bootstrap: str,
    topic: str,
    records: Iterable[tuple[bytes, bytes]],
    *,
    partition_of: Callable[[bytes], int] | None = None,
    chunk: int = 20_000,
) -> int:
    """Write records fast (batched, acks=1); returns how many were written."""
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, acks=1, linger_ms=20, max_batch_size=512 * 1024, max_request_size=4 * 1024 * 1024
    )
    await producer.start()
    count = 0
    try:
        pending: list[asyncio.Future[Any]] = []
        for key, value in records:
            partition = partition_of(key) if partition_of is not None else None
            pending.append(await producer.send(topic, value=value, key=key, partition=partition))
            count += 1
            if len(pending) >= chunk:
                await asyncio.gather(*pending)
                pending.clear()
        await asyncio.gather(*pending)
    finally:
        await producer.stop()
    return count


@dataclasses.dataclass(frozen=True, slots=True)
class Watch:
    """What a topic showed until the expected final statuses were all there (or the deadline)."""

    complete: bool
    records: int
    first_ms: int | None
    last_ms: int | None
    matched: int
    expected: int


async def watch_finals(
    bootstrap: str,
    topic: str,
    expected: Mapping[bytes, FinalStatus],
    final_of: Callable[[bytes], FinalStatus],
    *,
    within_s: float,
    alive: Callable[[], bool] = lambda: True,
) -> Watch:
    """Read `topic` until the last record of every key says its expected final status.

    The number of changes depends on the order events arrive in; the final state does not,
    so completion is judged on the final status and times of every message.
    """
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=None,
        auto_offset_reset="earliest",
        max_partition_fetch_bytes=4 * 1024 * 1024,
        fetch_max_bytes=16 * 1024 * 1024,
    )
    await consumer.start()
    latest: dict[bytes, FinalStatus] = {}
    matched = records = 0
    first_ms: int | None = None
    last_ms: int | None = None
    deadline = time.monotonic() + within_s
    try:
        while matched < len(expected) and time.monotonic() < deadline and alive():
            batches = await consumer.getmany(timeout_ms=200, max_records=10_000)
            for batch in batches.values():
                for record in batch:
                    records += 1
                    ts = record.timestamp
                    first_ms = ts if first_ms is None else min(first_ms, ts)
                    last_ms = ts if last_ms is None else max(last_ms, ts)
                    key = record.key
                    want = expected.get(key)
                    if want is None:
                        continue
                    final = final_of(record.value)
                    was = latest.get(key)
                    latest[key] = final
                    if was == want and final != want:
                        matched -= 1
                    elif was != want and final == want:
                        matched += 1
    finally:
        await consumer.stop()
    return Watch(
        complete=matched == len(expected),
        records=records,
        first_ms=first_ms,
        last_ms=last_ms,
        matched=matched,
        expected=len(expected),
    )


def topic_env(settings: KafkaSettings) -> dict[str, str]:
    """The environment that points a statusflow process at these topics and broker."""
    return {
        "KAFKA_BOOTSTRAP_SERVERS": settings.bootstrap_servers,
        "STATUSFLOW_PARTITIONS": str(settings.partitions),
        **{f"STATUSFLOW_TOPIC_{k.upper()}": v for k, v in settings.topics.model_dump().items()},
    }


def spawn(
    args: list[str], env: Mapping[str, str], log_path: Path, python: Path | None = None
) -> subprocess.Popen[bytes]:
    """Start `python <args>` (this interpreter unless `python`) from the repo root with `env`
    added, output to `log_path`."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("wb") as log_file:
        return subprocess.Popen(
            [str(python or sys.executable), *args],
            cwd=REPO,
            env={**os.environ, "PYTHONUNBUFFERED": "1", **env},
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )


def stop(proc: subprocess.Popen[bytes], *, grace_s: float = 5) -> None:
    """SIGTERM, then SIGKILL after `grace_s` (only this process, which we started)."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def wait_http(url: str, proc: subprocess.Popen[bytes], timeout_s: float) -> float:
    """Poll `url` until it answers 2xx; returns the seconds it took."""
    started = time.monotonic()
    while time.monotonic() - started < timeout_s:
        if proc.poll() is not None:
            msg = f"{proc.args!r} exited with {proc.returncode} before {url} answered"
            raise RuntimeError(msg)
        with (
            contextlib.suppress(urllib.error.URLError, ConnectionError, TimeoutError),
            urllib.request.urlopen(url, timeout=1) as response,
        ):
            if 200 <= response.status < 300:
                return time.monotonic() - started
        time.sleep(0.05)
    msg = f"{url} did not answer within {timeout_s:.0f}s"
    raise RuntimeError(msg)


def worker_env(settings: KafkaSettings, app_id: str, web_port: int, data_dir: Path) -> dict[str, str]:
    """Environment of one `python -m streams` worker on these topics."""
    return {
        **topic_env(settings),
        "STATUSFLOW_APP_ID": app_id,
        "STATUSFLOW_WEB_PORT": str(web_port),
        "STATUSFLOW_DATA_DIR": str(data_dir),
        "STATUSFLOW_LOG_LEVEL": "warning",
    }
