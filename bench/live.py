"""The live stack of the full-stack bench and the soak: a real receiver and a real worker (RocksDB
store) on one broker, paced sample webhooks, the worker's consumer lag, topic reads and the end
state against the reference fold of what the receiver wrote.

Webhooks are sent by statusflow_cli.http_load (`send_paced`), the
lean client `statusflow loadgen` uses too.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import random
import subprocess
import time
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import aiohttp
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError

from bench.harness import RESULTS, create_topics, spawn, stop, topic_env, unique, wait_http, worker_env
from devkit.kafka_local import free_port
from schemas.codec import codec
from schemas.envelope import RawWebhook
from schemas.settings import KafkaSettings
from schemas.topics import partitions_of
from statusflow_cli.http_load import send_paced
from statusflow_cli.samples import LIFECYCLES, T0, reference_fold
from streams.core.records import message_path, state_view
from streams.domain.events import parse_message_key
from streams.domain.lattice import MessageState, join
from streams.positions import LagProbe, lag_by_topic
from streams.settings import WorkerSettings

#: The worker's warnings when it reads records again (streams/faust_ext/stall_repair.py): the goal is none.
REREAD_MARKS = ("reading again", "read again", "reading them again")


def webhooks(prefix: str, seed: int = 7) -> Iterator[tuple[str, bytes, str]]:
    """(provider, body, content type) forever: one sample lifecycle at a time, fresh ids behind `prefix`.

    Like `statusflow loadgen`, but event times are just behind the wall clock: the worker retires
    messages by event time (streams/domain/retention.py), and the samples' fixed 2025 times next to
    Twilio's receipt times (now) would make every other message due at once.
    """
    rng = random.Random(seed)  # a reproducible workload, not a secret
    providers = list(LIFECYCLES)
    n = 0
    while True:
        provider = rng.choice(providers)
        build, lifecycles = LIFECYCLES[provider]
        lifecycle = rng.choice(lifecycles)
        shift = int(time.time()) - 90 - T0
        for status, offset, code in lifecycle:
            body, content_type = build(f"{prefix}{provider}-{n}", status, offset + shift, code)
            yield provider, body, content_type
        n += 1


def pct(sorted_values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile of sorted values (nan when empty)."""
    if not sorted_values:
        return float("nan")
    return sorted_values[min(len(sorted_values) - 1, int(len(sorted_values) * q))]


def worker_settings(settings: KafkaSettings, app_id: str) -> WorkerSettings:
    """The worker's settings as far as its consumer groups go (for the lag probe)."""
    return WorkerSettings(
        bootstrap_servers=settings.bootstrap_servers,
        topics=settings.topics,
        partitions=settings.partitions,
        app_id=app_id,
    )


class Lag:
    """Every consumer lag of one worker app: `<app_id>-normalize` on the raw topic and `<app_id>`
    on events and signals (streams/positions.py measures it the way the worker's own gauge does)."""

    def __init__(self, settings: KafkaSettings, app_id: str) -> None:
        self._probe = LagProbe(worker_settings(settings, app_id))
        self._app_id = app_id
        self._roles = {name: role for role, name in settings.topics.model_dump().items()}
        self._last: dict[str, int] = {}
        #: Records ever written to the watched topics (their end offsets), at the last measurement.
        self.written = 0

    def _label(self, group: str, topic: str) -> str:
        stage = "normalize" if group == f"{self._app_id}-normalize" else "track" if group == self._app_id else group
        return f"{stage}/{self._roles.get(topic, topic)}"

    async def measure(self) -> dict[str, int]:
        """'stage/topic' (normalize/raw, track/events, track/signals) → records between the group's
        position and the end (the last figures again when the broker does not answer once)."""
        try:
            measured = await self._probe.measure_partitions()
        except KafkaError:
            return dict(self._last)
        self._last = {
            self._label(group, topic): lag
            for group, offsets in sorted(measured.items())
            for topic, lag in sorted(lag_by_topic(offsets).items())
        }
        self.written = sum(where.end for offsets in measured.values() for where in offsets.values())
        return dict(self._last)

    async def total(self) -> int:
        """The sum of every lag."""
        return sum((await self.measure()).values())

    async def wait_below(self, threshold: int, within_s: float, every_s: float = 0.5) -> tuple[float, int]:
        """Sample until the total lag is at most `threshold`; (seconds waited, last total)."""
        started = time.monotonic()
        total = await self.total()
        while total > threshold and time.monotonic() - started < within_s:
            await asyncio.sleep(every_s)
            total = await self.total()
        return time.monotonic() - started, total


@dataclasses.dataclass
class Stack:
    """A receiver and a worker on topics of their own (one prefix) on a broker."""

    bootstrap: str
    tmp: Path
    label: str = "fullstack"
    prefix: str = ""
    settings: KafkaSettings | None = None
    receiver: subprocess.Popen[bytes] | None = None
    worker: subprocess.Popen[bytes] | None = None
    receiver_port: int = 0
    worker_port: int = 0
    worker_logs: list[Path] = dataclasses.field(default_factory=list)
    receiver_log: Path | None = None

    @property
    def app_id(self) -> str:
        """The worker's app id (consumer groups, changelogs)."""
        return self.prefix.rstrip(".")

    @property
    def topics(self) -> KafkaSettings:
        """The settings of this stack's topics."""
        assert self.settings is not None, "start the stack first"
        return self.settings

    @property
    def receiver_url(self) -> str:
        """Where to POST."""
        return f"http://127.0.0.1:{self.receiver_port}"

    @property
    def worker_url(self) -> str:
        """The worker's web server (query API)."""
        return f"http://127.0.0.1:{self.worker_port}"

    async def start(self) -> None:
        """Fresh topics, then the receiver and the worker; returns once both answer."""
        self.prefix = unique(self.label) + "."
        self.settings = await create_topics(self.bootstrap, self.prefix)
        self.receiver_port, self.worker_port = free_port(), free_port()
        env = {
            **topic_env(self.settings),
            "STATUSFLOW_HOST": "127.0.0.1",
            "STATUSFLOW_PORT": str(self.receiver_port),
            "STATUSFLOW_LOG_LEVEL": "warning",  # aiohttp's access log at info writes a line per request
            "STATUSFLOW_SPOOL_DIR": str(self.tmp / f"{self.app_id}-spool"),
        }
        self.receiver_log = RESULTS / "logs" / f"{self.app_id}-receiver.log"
        self.receiver = spawn(["-m", "receiver"], env, self.receiver_log)
        await asyncio.to_thread(wait_http, f"{self.receiver_url}/healthz", self.receiver, 60)
        await self.start_worker()

    async def start_worker(self) -> float:
        """Start the worker (RocksDB store in the temp dir); seconds until its /readyz answers 200."""
        assert self.worker is None or self.worker.poll() is not None, "the worker is running"
        env = {
            **worker_env(self.topics, self.app_id, self.worker_port, self.tmp / f"{self.app_id}-worker"),
            "STATUSFLOW_STORE": "rocksdb",
        }
        self.worker_logs.append(RESULTS / "logs" / f"{self.app_id}-worker-{len(self.worker_logs)}.log")
        self.worker = spawn(["-m", "streams"], env, self.worker_logs[-1])
        return await asyncio.to_thread(wait_http, f"{self.worker_url}/readyz", self.worker, 180)

    def stop_worker(self) -> None:
        """SIGTERM the worker (it commits and closes its store), SIGKILL after 30 s."""
        if self.worker is not None:
            stop(self.worker, grace_s=30)

    def stop(self) -> None:
        """Stop both processes."""
        self.stop_worker()
        if self.receiver is not None:
            stop(self.receiver, grace_s=15)

    def alive(self) -> str | None:
        """None while both run, else which one exited (and where its log is)."""
        for name, proc, log in (
            ("receiver", self.receiver, self.receiver_log),
            ("worker", self.worker, self.worker_logs[-1] if self.worker_logs else None),
        ):
            if proc is not None and proc.poll() is not None:
                return f"the {name} exited with {proc.returncode} (see {log})"
        return None

    def lag(self) -> Lag:
        """The lag of this stack's worker."""
        return Lag(self.topics, self.app_id)

    def rereads(self) -> int:
        """Lines of the worker's logs that say it reads records again."""
        return sum(count_rereads(log) for log in self.worker_logs)


def count_rereads(log: Path) -> int:
    """Warnings of one worker log that say it reads records again."""
    if not log.exists():
        return 0
    with log.open(encoding="utf-8", errors="replace") as lines:
        return sum(1 for line in lines if any(mark in line for mark in REREAD_MARKS))


@contextlib.asynccontextmanager
async def running(bootstrap: str, tmp: Path, label: str) -> AsyncIterator[Stack]:
    """A started stack, stopped on the way out."""
    stack = Stack(bootstrap, tmp, label)
    try:
        await stack.start()
        yield stack
    finally:
        stack.stop()


async def warm_up(stack: Stack, within_s: float = 120) -> float:
    """A few hundred webhooks, then wait until the worker has processed them (its consumers are
    assigned and busy); returns the seconds it took."""
    started = time.monotonic()
    await send_paced(stack.receiver_url, webhooks(f"warm-{stack.app_id}-"), 200, 300)
    await stack.lag().wait_below(0, within_s)
    return time.monotonic() - started


async def end_offsets(bootstrap: str, topic: str) -> dict[int, int]:
    """partition → end offset of `topic`."""
    partitions = await partitions_of(bootstrap, [topic])
    if not partitions:
        msg = f"{topic} has no partitions"
        raise RuntimeError(msg)
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None)
    await consumer.start()
    try:
        ends = await consumer.end_offsets(partitions)
        return {tp.partition: offset for tp, offset in ends.items()}
    finally:
        await consumer.stop()


Record = tuple[bytes | None, bytes, int]  # key, value, timestamp (ms)


async def scan(
    bootstrap: str,
    topic: str,
    handle: Callable[[list[Record]], None],
    *,
    start: Mapping[int, int] | None = None,
    end: Mapping[int, int] | None = None,
    within_s: float = 300,
) -> int:
    """Read `topic` from `start` (default: the beginning) up to `end` (default: its ends now), one
    batch at a time into `handle`, in offset order per partition; returns how many were read."""
    if end is None:
        end = await end_offsets(bootstrap, topic)
    partitions = [TopicPartition(topic, p) for p, offset in end.items() if offset > (start or {}).get(p, 0)]
    if not partitions:
        return 0
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        group_id=None,
        enable_auto_commit=False,
        max_partition_fetch_bytes=4 * 1024 * 1024,
        fetch_max_bytes=16 * 1024 * 1024,
    )
    await consumer.start()
    count = 0
    try:
        consumer.assign(partitions)
        for tp in partitions:
            consumer.seek(tp, (start or {}).get(tp.partition, 0))
        left = set(partitions)
        deadline = time.monotonic() + within_s
        while left and time.monotonic() < deadline:
            batches = await consumer.getmany(*left, timeout_ms=500, max_records=20_000)
            for tp, batch in batches.items():
                stop_at = end[tp.partition]
                records = [(r.key, r.value, r.timestamp) for r in batch if r.offset < stop_at]
                count += len(records)
                handle(records)
                if batch and batch[-1].offset + 1 >= stop_at:
                    left.discard(tp)
            for tp in list(left):
                if await consumer.position(tp) >= end[tp.partition]:
                    left.discard(tp)
        if left:
            msg = f"{topic}: {len(left)} partitions not read to their end within {within_s:.0f}s"
            raise RuntimeError(msg)
    finally:
        await consumer.stop()
    return count


class Reference:
    """The reference fold of raw envelopes, batch by batch (the lattice join of batch folds is the
    fold of everything, whatever the order: streams/domain/lattice.py)."""

    def __init__(self) -> None:
        self.states: dict[str, MessageState] = {}
        self.envelopes = 0

    def add(self, records: list[Record]) -> None:
        """Fold a batch of raw records (key = request id, value = Avro envelope)."""
        folded = reference_fold([RawWebhook.from_avro(value) for _, value, _ in records])
        self.envelopes += len(records)
        for key, state in folded.items():
            was = self.states.get(key)
            self.states[key] = state if was is None else join(was, state)


#: What a StatusChange says about a message (everything but its ids and the previous status).
CHANGE_FIELDS = (
    "message_key",
    "status",
    "queued_at",
    "created_at",
    "sent_at",
    "failed_at",
    "delivered_at",
    "read_at",
    "delivered_implied",
    "failure_reason",
    "error_code",
    "error_title",
    "anomaly",
    "campaign",
    "recipient",
    "correlation_id",
)


def expected_change(state: MessageState) -> tuple[Any, ...]:
    """The CHANGE_FIELDS of the last change a message in `state` must have on the changes topic."""
    status, failure = state.status, state.failure
    return (
        state.message_key,
        status.value if status else None,
        state.queued_at,
        state.created_at,
        state.sent_at,
        state.failed_at,
        state.delivered_at,
        state.read_at,
        state.delivered_implied,
        failure.reason.value if failure else None,
        failure.error_code if failure else None,
        failure.error_title if failure else None,
        state.anomaly,
        state.campaign,
        state.recipient,
        state.correlation_id,
    )


class LastChanges:
    """The last change per message key of a changes topic (compact: only CHANGE_FIELDS)."""

    def __init__(self) -> None:
        self.last: dict[str, tuple[Any, ...]] = {}
        self.records = 0
        self._codec = codec("status_change")

    def add(self, records: list[Record]) -> None:
        """Take a batch of change records."""
        for _, value, _ in records:
            self.take(self._codec.decode(value))

    def take(self, change: Mapping[str, Any]) -> None:
        """Take one decoded change (later ones of a key replace earlier ones)."""
        self.last[change["message_key"]] = tuple(change[f] for f in CHANGE_FIELDS)
        self.records += 1


@dataclasses.dataclass(frozen=True)
class FoldCheck:
    """The end state of every message against the reference fold."""

    messages: int
    matched: int
    missing: int
    mismatched: int
    examples: list[Any]

    @property
    def ok(self) -> bool:
        """Every message ended as the reference says."""
        return self.matched == self.messages

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready figures."""
        return {**dataclasses.asdict(self), "ok": self.ok}


def compare(reference: Mapping[str, MessageState], changes: LastChanges) -> FoldCheck:
    """Each referenced message with a status must have its reference state in its last change."""
    matched = missing = mismatched = 0
    examples: list[Any] = []
    wanted = 0
    for key, state in reference.items():
        if state.status is None:
            continue  # side events only: no change is ever published
        wanted += 1
        got = changes.last.get(key)
        if got is None:
            missing += 1
            if len(examples) < 3:
                examples.append({"key": key, "missing": True})
            continue
        want = expected_change(state)
        if got == want:
            matched += 1
        else:
            mismatched += 1
            if len(examples) < 3:
                diff = {f: (g, w) for f, g, w in zip(CHANGE_FIELDS, got, want, strict=True) if g != w}
                examples.append({"key": key, "changes_vs_reference": diff})
    return FoldCheck(messages=wanted, matched=matched, missing=missing, mismatched=mismatched, examples=examples)


async def check_api(worker_url: str, reference: Mapping[str, MessageState], sample: int = 200) -> dict[str, Any]:
    """GET /messages/{provider}/{channel}/{id} of up to `sample` referenced messages against their state view."""
    keys = sorted(k for k, s in reference.items() if s.status is not None)
    picked = random.Random(7).sample(keys, min(sample, len(keys)))
    matched = 0
    examples: list[Any] = []
    deadline = time.monotonic() + 60
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as http:
        for key in picked:
            if time.monotonic() > deadline:
                examples.append({"error": "gave up after 60 s"})
                break
            try:
                async with http.get(f"{worker_url}{message_path(parse_message_key(key))}") as response:
                    answer: Any = await response.json() if response.status == 200 else {"http": response.status}
            except (aiohttp.ClientError, TimeoutError) as exc:
                answer = {"error": repr(exc)}
            if answer == state_view(reference[key]):
                matched += 1
            elif len(examples) < 2:
                examples.append({"key": key, "answer": answer})
    return {"asked": len(picked), "matched": matched, "examples": examples}
