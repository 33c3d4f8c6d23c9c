"""Pipeline throughput: the real worker against a bare aiokafka pass-through and a naive Faust app.

Every contender reads the same preloaded raw records from its own fresh topics on the same
broker. Throughput is measured from the first to the last output record (broker CreateTime
stamps set by the producing process), so process start-up is reported apart from it.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
import urllib.parse
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from bench.generator import FinalStatus, Reference, final_of_change
from bench.harness import RESULTS, create_topics, produce, spawn, stop, unique, watch_finals, worker_env
from devkit.kafka_local import free_port
from schemas.codec import codec
from schemas.envelope import RawWebhook


@dataclasses.dataclass(frozen=True, slots=True)
class Run:
    """One contender's figures over one workload."""

    name: str
    webhooks: int
    events: int
    complete: bool
    start_to_first_s: float | None  # process start → first output record
    processing_s: float | None  # first → last output record
    wall_s: float  # process start → done
    error: str | None = None

    @property
    def webhooks_per_s(self) -> float | None:
        """Raw records per second over the processing window."""
        return self.webhooks / self.processing_s if self.processing_s else None

    @property
    def events_per_s(self) -> float | None:
        """Status events per second over the processing window."""
        return self.events / self.processing_s if self.processing_s else None

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready figures."""
        return {
            **dataclasses.asdict(self),
            "webhooks_per_s": _round(self.webhooks_per_s),
            "events_per_s": _round(self.events_per_s),
            "us_per_webhook": _round(1e6 / self.webhooks_per_s) if self.webhooks_per_s else None,
        }


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


# Contenders that write their changes as JSON (the worker writes Avro).
JSON_OUTPUTS = ("bench.naive_faust", "bench.quix_peer")


def avro_final(value: bytes) -> FinalStatus:
    """Final status of an Avro StatusChange (the real worker)."""
    return final_of_change(codec("status_change").decode(value))


def json_final(value: bytes) -> FinalStatus:
    """Final status of a JSON change (the naive Faust app)."""
    return final_of_change(orjson.loads(value))


def raw_records(webhooks: Sequence[RawWebhook]) -> list[tuple[bytes, bytes]]:
    """The records the receiver would have written: key = request id, value = Avro envelope."""
    return [(w.request_id.encode(), w.to_avro()) for w in webhooks]


async def preload(bootstrap: str, label: str, records: Sequence[tuple[bytes, bytes]]) -> tuple[Any, str]:
    """Fresh topics for one contender with the raw records in them; (settings, prefix)."""
    prefix = unique(label) + "."
    settings = await create_topics(bootstrap, prefix)
    await produce(bootstrap, settings.topics.raw, records)
    return settings, prefix


async def run_worker(
    bootstrap: str,
    records: Sequence[tuple[bytes, bytes]],
    ref: Reference,
    *,
    name: str = "pipeline",
    workers: int = 1,
    within_s: float = 300,
    module: str = "streams",
    profile: Path | None = None,
    python: Path | None = None,
    tmp: Path,
) -> Run:
    """Preload, start `workers` processes of `python -m <module>`, wait for every final status."""
    settings, prefix = await preload(bootstrap, name, records)
    app_id = prefix.rstrip(".")
    procs = []
    logs = []
    started = time.time()
    for i in range(workers):
        env = worker_env(settings, app_id, free_port(), tmp / f"{app_id}-{i}")
        args = ["-m", module]
        if profile is not None and i == 0:
            args = ["-m", "pyinstrument", "--no-color", "-o", str(profile), "-r", "pyisession", "-m", module]
        logs.append(RESULTS / "logs" / f"{app_id}-{i}.log")
        procs.append(spawn(args, env, logs[-1], python))
    try:
        final_of = json_final if module in JSON_OUTPUTS else avro_final
        watch = await watch_finals(
            bootstrap,
            settings.topics.changes,
            ref.finals,
            final_of,
            within_s=within_s,
            alive=lambda: all(p.poll() is None for p in procs),
        )
        done = time.time()
        exited = [f"worker {i} exited with {p.returncode} (see {logs[i]})" for i, p in enumerate(procs) if p.poll()]
    finally:
        for proc in procs:
            stop(proc, grace_s=60 if profile is not None else 5)
    first_s = watch.first_ms / 1000 - started if watch.first_ms is not None else None
    window = (watch.last_ms - watch.first_ms) / 1000 if watch.first_ms is not None and watch.last_ms else None
    error = None
    if not watch.complete:
        error = f"only {watch.matched}/{watch.expected} messages reached their final status"
        error += f"; {', '.join(exited)}" if exited else f" within {within_s:.0f}s"
        print(f"  ! {name}: {error}")
    return Run(
        name=name,
        webhooks=len(records),
        events=ref.events,
        complete=watch.complete,
        start_to_first_s=first_s,
        processing_s=window if watch.complete else None,
        wall_s=done - started,
        error=error,
    )


def _parse_body(envelope: dict[str, Any]) -> Any:
    body: bytes = envelope["body"]
    if envelope["content_type"] == "application/json":
        return orjson.loads(body)
    return urllib.parse.parse_qs(body.decode())


def _pass_through(envelope: dict[str, Any]) -> bytes:
    """What both ceilings write per raw record: the envelope's identity and the body's size."""
    doc = _parse_body(envelope)
    out = {
        "request_id": envelope["request_id"],
        "provider": envelope["provider"],
        "channel": envelope["channel"],
        "received_at": envelope["received_at"],
        "fields": len(doc),
    }
    return orjson.dumps(out)


def _ceiling_run(
    name: str, *, expected: int, events: int, count: int, first: float | None, started: float, done: float
) -> Run:
    """A pass-through ceiling's figures: `count` of `expected` records passed, the first at `first`."""
    complete = count == expected
    return Run(
        name=name,
        webhooks=expected,
        events=events,
        complete=complete,
        start_to_first_s=(first - started) if first is not None else None,
        processing_s=(done - first) if first is not None and complete else None,
        wall_s=done - started,
    )


async def run_raw_passthrough(
    bootstrap: str, records: Sequence[tuple[bytes, bytes]], *, events: int, within_s: float = 120
) -> Run:
    """The ceiling: getmany → Avro + body decode → dict → send, futures gathered per batch."""
    settings, prefix = await preload(bootstrap, "raw", records)
    raw_codec = codec("raw_webhook")
    started = time.time()
    consumer = AIOKafkaConsumer(
        settings.topics.raw,
        bootstrap_servers=bootstrap,
        group_id=prefix + "passthrough",
        auto_offset_reset="earliest",
        max_partition_fetch_bytes=4 * 1024 * 1024,
    )
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5, max_batch_size=256 * 1024)
    await consumer.start()
    await producer.start()
    count = 0
    first: float | None = None
    deadline = time.monotonic() + within_s
    try:
        while count < len(records) and time.monotonic() < deadline:
            batches = await consumer.getmany(timeout_ms=100, max_records=2_000)
            if not batches:
                continue
            if first is None:
                first = time.time()
            pending = []
            for batch in batches.values():
                for record in batch:
                    out = _pass_through(raw_codec.decode(record.value))
                    pending.append(await producer.send(settings.topics.changes, out, key=record.key))
            await asyncio.gather(*pending)
            count += len(pending)
        done = time.time()
    finally:
        await producer.stop()
        await consumer.stop()
    return _ceiling_run(
        "raw aiokafka pass-through",
        expected=len(records),
        events=events,
        count=count,
        first=first,
        started=started,
        done=done,
    )


def _confluent_pass_through(
    bootstrap: str, *, raw_topic: str, out_topic: str, group: str, expected: int, within_s: float
) -> tuple[int, float | None, float]:
    """The confluent-kafka loop (blocking, run in a thread): consume in batches, the same work
    per record as the aiokafka ceiling, produce with librdkafka's own batching; (count, first
    record's time, done)."""
    from confluent_kafka import Consumer, Producer  # noqa: PLC0415 - only this ceiling needs it

    raw_codec = codec("raw_webhook")
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": group,
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 5, "enable.idempotence": True})
    consumer.subscribe([raw_topic])
    count, first = 0, None
    deadline = time.monotonic() + within_s
    try:
        while count < expected and time.monotonic() < deadline:
            batch = consumer.consume(num_messages=2_000, timeout=0.1)
            if not batch:
                continue
            if first is None:
                first = time.time()
            for record in batch:
                if record.error() is not None:
                    continue
                value = record.value()
                assert value is not None
                while True:
                    try:
                        producer.produce(out_topic, _pass_through(raw_codec.decode(value)), key=record.key())
                        break
                    except BufferError:  # librdkafka's queue is full: let it send
                        producer.poll(0.05)
                count += 1
            producer.poll(0)
        producer.flush(30)
        done = time.time()
    finally:
        consumer.close()
    return count, first, done


async def run_confluent_passthrough(
    bootstrap: str, records: Sequence[tuple[bytes, bytes]], *, events: int, within_s: float = 120
) -> Run:
    """The second ceiling: the same pass-through with confluent-kafka (librdkafka)."""
    settings, prefix = await preload(bootstrap, "raw-ck", records)
    started = time.time()
    count, first, done = await asyncio.to_thread(
        _confluent_pass_through,
        bootstrap,
        raw_topic=settings.topics.raw,
        out_topic=settings.topics.changes,
        group=prefix + "passthrough",
        expected=len(records),
        within_s=within_s,
    )
    return _ceiling_run(
        "raw confluent-kafka pass-through",
        expected=len(records),
        events=events,
        count=count,
        first=first,
        started=started,
        done=done,
    )
