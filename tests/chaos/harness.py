"""The chaos harness: real receiver and worker processes, a concurrent webhook sender, and the
end-state check against the reference fold of every acknowledged webhook.

Everything runs on loopback, every wait has a deadline, and nothing here sleeps to synchronise:
waits poll a condition (tests/integration/helpers.wait_until).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import dataclasses
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from devkit.kafka_local import free_port
from schemas.codec import codec
from schemas.envelope import RawWebhook
from schemas.settings import KafkaSettings, TopicNames
from statusflow_cli.samples import MixedStream, mixed_stream, reference_fold
from streams.core.normalizer import normalize
from streams.core.records import message_path, state_view
from streams.domain.events import parse_message_key
from streams.domain.lattice import MessageState
from tests.integration.helpers import read_topic, wait_until

REPO = Path(__file__).resolve().parents[2]

# Short windows so that alerts and metrics appear within a test's deadline.
FAST_WINDOWS = {
    "STATUSFLOW_IDLE_CLOSE_S": "1",
    "STATUSFLOW_TICK_INTERVAL_S": "0.5",
    "STATUSFLOW_ALERT_LIMIT_PER_WINDOW": "1000",
    "STATUSFLOW_LAG_INTERVAL_S": "1",
    # faust-streaming can hang in recovery after a rebalance (docs/chaos.md); the worker's
    # watchdog replaces a worker whose recovery stands still this long (90 s in production).
    "STATUSFLOW_RECOVERY_STALL_S": "20",
}
# The sample stream's event times are of June 2025, but Twilio's come from the receiver's clock
# (it sends none): a partition's retention watermark (its latest event time) is then today, and
# a week's retention would retire the 2025 messages mid-test. Retention is not what these
# scenarios are about (tests/integration/test_pipeline.py covers it): ten years keeps them all.
NO_RETENTION = {
    "STATUSFLOW_RETENTION_FINISHED_S": str(10 * 365 * 86400),
    "STATUSFLOW_RETENTION_UNFINISHED_S": str(10 * 365 * 86400),
}


@dataclasses.dataclass
class Process:
    """A receiver or worker child process, its web URL and its log file."""

    name: str
    proc: subprocess.Popen[bytes]
    url: str
    log: Path
    argv: list[str]
    env: dict[str, str]

    def signal(self, sig: signal.Signals) -> None:
        """Send `sig` (SIGSTOP, SIGCONT) to the process and its children (a worker's normalize
        child): the whole worker pauses, as in a stalled VM."""
        for pid in (*_children(self.proc.pid), self.proc.pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)

    async def kill(self) -> None:
        """SIGKILL: no shutdown, no flush, no commit."""
        self.proc.send_signal(signal.SIGKILL)
        await asyncio.to_thread(self.proc.wait, 30)

    async def stop(self) -> None:
        """SIGTERM (after SIGCONT, in case it is paused), then SIGKILL if it does not stop."""
        if self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGCONT)
        self.proc.terminate()
        try:
            await asyncio.to_thread(self.proc.wait, 30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            await asyncio.to_thread(self.proc.wait, 30)

    def log_tail(self, lines: int = 60) -> str:
        """The end of the process's log, for failure messages."""
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])


def _children(pid: int) -> list[int]:
    """The child processes of `pid` (Linux /proc), and theirs."""
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        with contextlib.suppress(OSError):
            for child in (task / "children").read_text().split():
                found += [int(child), *_children(int(child))]
    return found


class Stack:
    """Receivers and workers of one scenario on one broker (or cluster), on this test's topics."""

    def __init__(self, settings: KafkaSettings, app_id: str, workdir: Path) -> None:
        self.settings = settings
        self.app_id = app_id
        self.workdir = workdir
        self.processes: list[Process] = []

    def _topic_env(self) -> dict[str, str]:
        return {
            **os.environ,
            "KAFKA_BOOTSTRAP_SERVERS": self.settings.bootstrap_servers,
            "STATUSFLOW_PARTITIONS": str(self.settings.partitions),
            "STATUSFLOW_REPLICATION_FACTOR": str(self.settings.replication_factor),
            **{f"STATUSFLOW_TOPIC_{k.upper()}": v for k, v in self.settings.topics.model_dump().items()},
        }

    def _spawn(self, name: str, module: str, env: dict[str, str], url: str) -> Process:
        log = self.workdir / f"{name}.log"
        argv = [sys.executable, "-m", module]
        with log.open("ab") as out:
            proc = subprocess.Popen(argv, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT)
        process = Process(name=name, proc=proc, url=url, log=log, argv=argv, env=env)
        self.processes.append(process)
        return process

    def start_receiver(self, name: str = "receiver", port: int | None = None, **env: str) -> Process:
        """`python -m receiver` with its own spool directory (kept across restarts of `name`)."""
        port = port or free_port()
        full = {
            **self._topic_env(),
            "STATUSFLOW_PORT": str(port),
            "STATUSFLOW_SPOOL_DIR": str(self.workdir / f"{name}-spool"),
            "STATUSFLOW_PUBLISH_TIMEOUT_S": "2",
            "STATUSFLOW_LOG_LEVEL": "warning",
            **env,
        }
        return self._spawn(name, "receiver", full, f"http://127.0.0.1:{port}")

    def start_worker(self, name: str = "worker", **env: str) -> Process:
        """`python -m streams` on this scenario's topics and app id; its data dir is per name."""
        port = free_port()
        full = {
            **self._topic_env(),
            "STATUSFLOW_APP_ID": self.app_id,
            "STATUSFLOW_WEB_PORT": str(port),
            "STATUSFLOW_DATA_DIR": str(self.workdir / f"{name}-data"),
            **FAST_WINDOWS,
            **NO_RETENTION,
            **env,
        }
        return self._spawn(name, "streams", full, f"http://127.0.0.1:{port}")

    def restart(self, process: Process, **env: str) -> Process:
        """The same command, port, data and spool directories again (after a kill); `env` overrides."""
        full = {**process.env, **env}
        with process.log.open("ab") as out:
            out.write(b"\n===== restarted =====\n")
            proc = subprocess.Popen(process.argv, cwd=REPO, env=full, stdout=out, stderr=subprocess.STDOUT)
        again = dataclasses.replace(process, proc=proc, env=full)
        self.processes.append(again)
        return again

    async def wait_healthy(self, process: Process, within: float = 120) -> None:
        """Until the process answers /healthz (fails at once if it exited)."""
        await self._wait_for_ok(process, "/healthz", f"{process.name} answering /healthz", within)

    async def wait_ready(self, worker: Process, within: float = 120) -> None:
        """Until the worker's GET /readyz answers 200 (Faust side settled)."""
        await self._wait_for_ok(worker, "/readyz", f"{worker.name} ready (not rebalancing or recovering)", within)

    async def _wait_for_ok(self, process: Process, path: str, what: str, within: float) -> None:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as http:

            async def ok() -> bool | None:
                if process.proc.poll() is not None:
                    raise AssertionError(f"{process.name} exited:\n{process.log_tail()}")
                try:
                    async with http.get(f"{process.url}{path}") as response:
                        return True if response.status == 200 else None
                except (aiohttp.ClientError, TimeoutError):
                    return None

            await wait_until(ok, within=within, what=what)

    async def stop_all(self) -> None:
        """Stop every process still running (they are stopped in reverse start order)."""
        for process in reversed(self.processes):
            await process.stop()

    def logs(self, lines: int = 60) -> str:
        """The end of every process's log (each log once)."""
        seen: dict[Path, Process] = {p.log: p for p in self.processes}
        return "\n".join(f"----- {p.log.name} (last {lines} lines) -----\n{p.log_tail(lines)}" for p in seen.values())


def make_stack(bootstrap: str, unique_id: str, workdir: Path, replication_factor: int = 1) -> Stack:
    """A stack on topics and an app id of this test alone."""
    settings = KafkaSettings(
        bootstrap_servers=bootstrap,
        topics=TopicNames().prefixed(f"c{unique_id}."),
        partitions=4,
        replication_factor=replication_factor,
    )
    return Stack(settings, app_id=f"chaos-{unique_id}", workdir=workdir)


async def finish(stack: Stack, request: pytest.FixtureRequest) -> None:
    """Stop every process; when the test failed, print their logs' ends (CI shows only pytest's output)."""
    await stack.stop_all()
    report = getattr(request.node, "report_call", None)
    if report is not None and report.failed:
        print(f"\n{stack.logs()}")  # noqa: T201 - shown by pytest on failure


@dataclasses.dataclass
class Delivery:
    """One POST of a sample webhook, and the request id of the 2xx that acknowledged it."""

    webhook: RawWebhook
    index: int
    request_id: str | None = None
    durable: str | None = None
    attempts: int = 0
    rejected: str | None = None


class Sender:
    """Posts deliveries concurrently; a failed attempt (no answer, 5xx) is retried like a provider
    that retries, until acknowledged or the deadline passes."""

    def __init__(
        self, url: Callable[[], str], concurrency: int = 8, rate: float | None = 12, retry_within: float = 180
    ) -> None:
        self._url = url
        self._concurrency = concurrency
        self._rate = rate
        self._retry_within = retry_within
        self.deliveries: list[Delivery] = []
        self.acked = 0
        self._progress = asyncio.Condition()
        self._started = time.monotonic()

    async def run(self, webhooks: Sequence[RawWebhook]) -> list[Delivery]:
        """Post every webhook (in this order, `concurrency` at a time); returns the deliveries."""
        self.deliveries = [Delivery(w, i) for i, w in enumerate(webhooks)]
        self._started = time.monotonic()
        queue: asyncio.Queue[Delivery] = asyncio.Queue()
        for delivery in self.deliveries:
            queue.put_nowait(delivery)
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as http:
            await asyncio.gather(*(self._post_from(queue, http) for _ in range(self._concurrency)))
        return self.deliveries

    async def _post_from(self, queue: asyncio.Queue[Delivery], http: aiohttp.ClientSession) -> None:
        while not queue.empty():
            delivery = queue.get_nowait()
            if self._rate:
                # Paced: the stream lasts long enough for a fault to land in its middle.
                await asyncio.sleep(max(self._started + delivery.index / self._rate - time.monotonic(), 0))
            await self._deliver(delivery, http)

    async def _deliver(self, delivery: Delivery, http: aiohttp.ClientSession) -> None:
        webhook = delivery.webhook
        deadline = time.monotonic() + self._retry_within
        while time.monotonic() < deadline:
            delivery.attempts += 1
            url = f"{self._url()}/webhooks/{webhook.provider}/{webhook.channel}"
            try:
                async with http.post(url, data=webhook.body, headers={"Content-Type": webhook.content_type}) as r:
                    if r.status == 200:
                        answer = await r.json()
                        delivery.request_id, delivery.durable = answer["request_id"], answer["durable"]
                        async with self._progress:
                            self.acked += 1
                            self._progress.notify_all()
                        return
                    if r.status < 500:
                        delivery.rejected = f"{r.status} {await r.text()}"
                        return
            except (aiohttp.ClientError, TimeoutError):
                pass  # the receiver is down or was killed mid-request: retry, as a provider would
            await asyncio.sleep(0.2)  # a provider's retry back-off, not a synchronisation

    async def wait_acked(self, count: int, within: float = 120) -> None:
        """Until `count` deliveries are acknowledged."""
        async with asyncio.timeout(within), self._progress:
            await self._progress.wait_for(lambda: self.acked >= count)


@dataclasses.dataclass(frozen=True)
class Load:
    """How much a scenario sends and how: the sample stream's size, and the sender's concurrency
    and pace. Both loads send for about 25 s, so a fault lands mid-stream in either."""

    messages_per_kind: int
    concurrency: int
    rate: float
    suffix: str = ""  # of the scenario's name in the figures

    def stream(self, seed: int) -> MixedStream:
        """The sample mixed stream of this size."""
        return mixed_stream(messages_per_kind=self.messages_per_kind, seed=seed)

    def sender(self, url: Callable[[], str]) -> Sender:
        """A sender at this concurrency and pace."""
        return Sender(url, concurrency=self.concurrency, rate=self.rate)


# 296 webhooks at 12/s, 8 at a time; and 3,922 at 160/s, 32 at a time: thousands in flight
# while the fault happens, and a worker with a backlog to catch up on after it.
SMALL = Load(messages_per_kind=3, concurrency=8, rate=12)
LARGE = Load(messages_per_kind=40, concurrency=32, rate=160, suffix=" (3922)")
LOADS = [pytest.param(SMALL, id="296 webhooks"), pytest.param(LARGE, id="3922 webhooks")]


def storm(webhooks: Sequence[RawWebhook], copies: int, seed: int) -> list[RawWebhook]:
    """Every webhook `copies` times, in a random (reproducible) order."""
    out = [w for w in webhooks for _ in range(copies)]
    random.Random(seed).shuffle(out)  # a reproducible shuffle
    return out


@dataclasses.dataclass
class Figures:
    """One scenario's outcome, printed in one line and in the session's summary table."""

    scenario: str
    sent: int
    acknowledged: int
    found: int
    lost: int
    duplicate_ids: int
    repeats: int
    changes: int
    alerts: int
    seconds: float
    note: str = ""

    def line(self) -> str:
        """The figures in one line."""
        return (
            f"chaos {self.scenario}: sent={self.sent} acknowledged={self.acknowledged} found={self.found} "
            f"lost={self.lost} duplicate_ids={self.duplicate_ids} repeats={self.repeats} "
            f"changes={self.changes} alerts={self.alerts} "
            f"seconds={self.seconds:.0f}{' ' + self.note if self.note else ''}"
        )


@dataclasses.dataclass
class EndState:
    """What the verification found, for the assertions and the figures."""

    figures: Figures
    mismatched: dict[str, tuple[Any, Any]]
    rejected: list[str]
    raw: dict[str, RawWebhook]
    reference: dict[str, MessageState]
    audits: list[dict[str, Any]]
    duplicate_examples: list[Any]

    def check(self, expected: dict[str, MessageState], *, repeats_allowed: bool = False) -> None:
        """What every scenario asserts: all acknowledged, nothing lost, no duplicate derived id,
        every message in the state the sample stream says (provider statuses mapped and folded).
        Repeats (at-least-once redelivery of a derived record) only where a process crashed."""
        f = self.figures
        assert self.rejected == []
        assert f.acknowledged == f.sent, f.line()
        assert f.lost == 0, f"{f.line()}; e.g. {next(iter(self.mismatched.items()), None)}"
        assert self.mismatched == {}
        assert f.duplicate_ids == 0, f"{f.line()}; e.g. {self.duplicate_examples[:2]}"
        assert repeats_allowed or f.repeats == 0, f.line()
        assert {k: s.status for k, s in self.reference.items()} == {k: s.status for k, s in expected.items()}
        assert f.changes > 0
        assert f.alerts >= expected_alerts(expected), f.line()


def expected_alerts(expected: dict[str, MessageState]) -> int:
    """One per-message alert per failed message (failed, rejected, number not found, expired)."""
    return sum(1 for state in expected.values() if state.failure is not None)


def _message_keys(webhook: RawWebhook) -> set[str]:
    return {event.message_key for event in normalize(webhook.to_avro()).events}


async def _table_views(worker_url: str, expected: dict[str, MessageState], within: float) -> dict[str, Any]:
    """The worker's answer for every expected key, polled until all match or `within` passes."""
    answers: dict[str, Any] = {}
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as http:

        async def all_match() -> bool | None:
            for key, state in expected.items():
                if answers.get(key) == state_view(state):
                    continue
                try:
                    async with http.get(f"{worker_url}{message_path(parse_message_key(key))}") as response:
                        answers[key] = await response.json() if response.status == 200 else response.status
                except (aiohttp.ClientError, TimeoutError) as exc:
                    answers[key] = repr(exc)
                    return None
                if answers[key] != state_view(state):
                    return None
            return True

        with contextlib.suppress(AssertionError):  # the figures count what is missing
            await wait_until(all_match, within=within, what="every message in its reference state")
    return answers


def derived_id_figures(
    records: Sequence[dict[str, Any]], id_field: str, fact: tuple[str, ...], examples: list[Any] | None = None
) -> tuple[int, int]:
    """(duplicate ids, repeats) among derived records.

    A repeat is the same record again under its id: at-least-once delivery after a crash may
    produce it and a consumer drops it by id (docs/topics.md). A duplicate id is what no consumer can
    repair: one id on records that differ, or one fact (`fact` fields, e.g. an alert's message
    and kind) under several ids.
    """
    by_id: dict[str, list[dict[str, Any]]] = collections.defaultdict(list)
    for record in records:
        by_id[record[id_field]].append(record)
    conflicting = [same for same in by_id.values() if any(r != same[0] for r in same)]
    conflicts = len(conflicting)
    if examples is not None:
        examples.extend(conflicting[:2])
    repeats = sum(len(same) - 1 for same in by_id.values())
    if not fact:
        return conflicts, repeats
    by_fact: dict[tuple[Any, ...], list[dict[str, Any]]] = collections.defaultdict(list)
    for same in by_id.values():
        by_fact[tuple(same[0][f] for f in fact)].append(same[0])
    if examples is not None:
        examples.extend([r for r in by_fact.values() if len(r) > 1][:2])
    return conflicts + sum(len(r) - 1 for r in by_fact.values()), repeats


async def verify(
    scenario: str,
    stack: Stack,
    deliveries: Sequence[Delivery],
    worker_url: str,
    started: float,
    alerts_wanted: int,
    note: str = "",
    within: float = 150,
) -> EndState:
    """Compare the end state with the reference fold of every acknowledged delivery.

    The reference is folded from the raw log's envelopes of the acknowledged requests (their
    receipt times are what the worker sees for providers without event times), plus any
    unacknowledged attempt that reached the raw log anyway (a request killed after it became
    durable): the worker folds those too, and they repeat a webhook that was acknowledged later.
    """
    settings, bootstrap = stack.settings, stack.settings.bootstrap_servers
    acked = {d.request_id: d for d in deliveries if d.request_id is not None}
    records = await read_topic(
        bootstrap,
        settings.topics.raw,
        until=lambda rs: {k.decode() for k, _ in rs if k} >= acked.keys(),
        within=within,
    )
    raw = {key.decode(): RawWebhook.from_avro(value) for key, value in records if key}
    reference = reference_fold(list(raw.values()))
    answers = await _table_views(worker_url, reference, within)
    mismatched = {k: (answers.get(k), state_view(s)) for k, s in reference.items() if answers.get(k) != state_view(s)}
    found = sum(
        1
        for request_id, d in acked.items()
        if request_id in raw
        and raw[request_id].body == d.webhook.body
        and not (_message_keys(d.webhook) & mismatched.keys())
    )

    change_codec, alert_codec, audit_codec = codec("status_change"), codec("alert"), codec("audit_record")
    final_status = {k: s.status.value for k, s in reference.items() if s.status is not None}

    def changes_final(rs: list[tuple[bytes | None, bytes]]) -> bool:
        latest = {}
        for _, value in rs:
            change = change_codec.decode(value)
            latest[change["message_key"]] = change["status"]
        return latest == final_status

    changes = [
        change_codec.decode(v)
        for _, v in await read_topic(bootstrap, settings.topics.changes, until=changes_final, within=60)
    ]
    alerts_read = await read_topic(
        bootstrap,
        settings.topics.alerts,
        until=lambda rs: sum(alert_codec.decode(v)["message_key"] is not None for _, v in rs) >= alerts_wanted,
        within=60,
    )
    alerts = [a for a in map(alert_codec.decode, (v for _, v in alerts_read)) if a["message_key"] is not None]
    audits = [audit_codec.decode(v) for _, v in await read_topic(bootstrap, settings.topics.audit, within=60)]
    examples: list[Any] = []
    duplicates, repeats = derived_id_figures(changes, "change_id", (), examples)
    alert_duplicates, alert_repeats = derived_id_figures(alerts, "alert_id", ("message_key", "kind"), examples)
    figures = Figures(
        scenario=scenario,
        sent=len(deliveries),
        acknowledged=len(acked),
        found=found,
        lost=len(acked) - found,
        duplicate_ids=duplicates + alert_duplicates,
        repeats=repeats + alert_repeats,
        changes=len(changes),
        alerts=len(alerts),
        seconds=time.monotonic() - started,
        note=note,
    )
    rejected = [d.rejected for d in deliveries if d.rejected]
    return EndState(
        figures=figures,
        mismatched=mismatched,
        rejected=rejected,
        raw=raw,
        reference=reference,
        audits=audits,
        duplicate_examples=examples,
    )


async def wait_tracked(worker: Process, sender: Sender, within: float = 120) -> None:
    """Until the worker answers the state of some acknowledged message (it is tracking)."""
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as http:

        async def tracking() -> bool | None:
            for delivery in sender.deliveries:
                if delivery.request_id is None:
                    continue
                for key in _message_keys(delivery.webhook):
                    try:
                        async with http.get(f"{worker.url}{message_path(parse_message_key(key))}") as response:
                            return True if response.status == 200 else None
                    except (aiohttp.ClientError, TimeoutError):
                        return None
            return None

        await wait_until(tracking, within=within, what=f"{worker.name} tracking messages")
