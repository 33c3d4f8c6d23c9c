"""A worker started on a large backlog drains it: liveness, never speed.

The worker once fell behind live traffic and then livelocked: its stalled-partition repair took
partitions that were merely behind for stalled ones, read them again from their committed
offsets ("... reading them again from there"), and the Faust group's commits stopped moving.
Every test before this one fed the worker a few hundred webhooks, drained in seconds, so no
partition was ever behind for long.

Here the raw log holds more than 30 s of processing before the worker starts (150,000 webhooks
of the benchmark's generator; STATUSFLOW_LIVENESS_WEBHOOKS for a quick local run, the default is
what CI runs). While it drains, the committed offsets of every partition of the worker's groups
are sampled about once a second, and the test fails at the first sign of a livelock:

- a committed offset that goes backwards;
- a group whose committed offsets all stand still for 30 s while it has lag (a partition may wait
  longer for its turn, up to PARTITION_STILL_S);
- a re-read line in the worker's log, or a stalled-partition repair on its /metrics;
- a worker that exits;
- lag left on any partition when the (generous) deadline passes
  (STATUSFLOW_LIVENESS_DEADLINE_S, 10 minutes by default).

Then the end state: the last change of every message on the changes topic says the final status
(and times) of the reference fold, and a sample of messages answers its reference state.
No figure here is a throughput threshold: the deadlines only bound a wait for progress.
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import os
import random
import re
import time

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError

from bench.generator import FinalStatus, final_of_change, final_of_state, generate
from bench.harness import produce
from schemas.codec import codec
from schemas.settings import KafkaSettings
from schemas.topics import ensure_topics
from statusflow_cli.samples import reference_fold
from tests.integration.conftest import WorkerFactory, WorkerProcess
from tests.integration.helpers import metrics_text
from tests.integration.test_pipeline import wait_for_table

# 150,000 webhooks: about 30 s of processing for a worker at ~5,000 webhooks/s, so the
# 30 s stalled-partition window is crossed with records still waiting on every partition.
WEBHOOKS = int(os.environ.get("STATUSFLOW_LIVENESS_WEBHOOKS", "150000"))
DEADLINE_S = float(os.environ.get("STATUSFLOW_LIVENESS_DEADLINE_S", "600"))
# How long committed offsets may stand still while records wait behind them. A group commits
# every second or batch while it works, so a whole group still for GROUP_STILL_S (the stall
# repair's own window) is a livelock. One partition may wait longer for its turn: a consumer
# serves its partitions a fetch buffer at a time (the normalize loop's 8 MB, ~13,000 webhooks),
# so one partition can wait for three others' buffers; PARTITION_STILL_S bounds its starvation.
GROUP_STILL_S = 30.0
PARTITION_STILL_S = 120.0
SAMPLE_EVERY_S = 1.0  # poll interval of the commit sampler, not a synchronisation
TABLE_SAMPLE = 300
REREAD = re.compile(r".*reading (?:them )?again from there.*")
REPAIRS_METRIC = "statusflow_worker_stalled_partition_repairs"

# Fast windows as in the other worker tests; the stalled-partition window stays the
# production default (30 s): a merely-behind partition must not be mistaken for a stalled one.
FAST = {
    "STATUSFLOW_IDLE_CLOSE_S": "1",
    "STATUSFLOW_TICK_INTERVAL_S": "0.5",
    "STATUSFLOW_LAG_INTERVAL_S": "1",
}


@dataclasses.dataclass
class Still:
    """How long a committed position (a partition's offset, or the sum of a group's) has stood
    still while records waited behind it."""

    position: int | None = None
    since: float | None = None

    def seconds(self, position: int | None, lag: int, counting: bool, now: float) -> float:
        """Update with a sample; the seconds it has been still with lag (0: it moved, has no lag,
        or is not counted yet)."""
        if lag == 0 or not counting:
            self.position, self.since = position, None
            return 0.0
        if position != self.position or self.since is None:
            self.position, self.since = position, now
            return 0.0
        return now - self.since


@dataclasses.dataclass
class Track:
    """What the sampler knows of one partition of one group."""

    committed: int | None = None
    lag: int = 0
    still: Still = dataclasses.field(default_factory=Still)
    history: collections.deque[tuple[float, int | None, int]] = dataclasses.field(
        default_factory=lambda: collections.deque(maxlen=12)
    )


class CommitWatch:
    """Checks each sample of the committed offsets: never backwards, never still with lag.

    Stillness is counted once a group has committed something (a group that has not committed
    yet is starting, which the deadline bounds): a group whose commits all stand still for
    GROUP_STILL_S while it has lag, or a partition whose commit stands still for
    PARTITION_STILL_S while it has lag, is not live.
    """

    def __init__(self, started: float) -> None:
        self.started = started
        self.tracks: dict[tuple[str, TopicPartition], Track] = {}
        self.groups: dict[str, Still] = collections.defaultdict(Still)
        self.committing: set[str] = set()
        self.peak_lag: collections.Counter[str] = collections.Counter()
        self.longest_still: dict[str, float] = {"group": 0.0, "partition": 0.0}
        self.samples = 0
        self.error: str | None = None  # of the last sample that failed

    def observe(self, sample: dict[tuple[str, TopicPartition], tuple[int | None, int]], now: float) -> list[str]:
        """Problems with this sample, compared with the previous ones (empty: all is well)."""
        self.samples += 1
        problems: list[str] = []
        self.committing |= {group for (group, _), (committed, _) in sample.items() if committed is not None}
        group_position: collections.Counter[str] = collections.Counter()
        group_lag: collections.Counter[str] = collections.Counter()
        topic_lag: collections.Counter[str] = collections.Counter()
        for (group, tp), (committed, lag) in sample.items():
            track = self.tracks.setdefault((group, tp), Track())
            name = f"{group} {tp.topic}[{tp.partition}]"
            was = track.committed
            track.history.append((round(now - self.started, 1), committed, lag))
            if was is not None and (committed is None or committed < was):
                problems.append(f"{name}: committed offset went back from {was} to {committed}")
            still = track.still.seconds(committed, lag, group in self.committing, now)
            self.longest_still["partition"] = max(self.longest_still["partition"], still)
            if still > PARTITION_STILL_S:
                problems.append(
                    f"{name}: committed offset {committed} has not moved for {still:.0f}s with {lag} records "
                    f"behind it (t, committed, lag: {list(track.history)})"
                )
            track.committed, track.lag = committed, lag
            group_position[group] += committed or 0
            group_lag[group] += lag
            topic_lag[f"{group} {tp.topic}"] += lag
        for group, lag in group_lag.items():
            still = self.groups[group].seconds(group_position[group], lag, group in self.committing, now)
            self.longest_still["group"] = max(self.longest_still["group"], still)
            if still > GROUP_STILL_S:
                problems.append(f"{group}: no committed offset has moved for {still:.0f}s with {lag} records behind")
        for key, lag in topic_lag.items():
            self.peak_lag[key] = max(self.peak_lag[key], lag)
        return problems

    def lags(self) -> dict[str, int]:
        """Records behind per group and topic, as last sampled."""
        out: collections.Counter[str] = collections.Counter()
        for (group, tp), track in self.tracks.items():
            out[f"{group} {tp.topic}"] += track.lag
        return dict(out)

    def positions(self) -> list[tuple[str, int | None, int]]:
        """(group and partition, committed offset, lag) of every partition, as last sampled."""
        return [(f"{g} {tp.topic}[{tp.partition}]", t.committed, t.lag) for (g, tp), t in self.tracks.items()]

    def drained(self) -> bool:
        """Every partition of every group committed up to its end in the last sample."""
        return bool(self.tracks) and all(track.lag == 0 for track in self.tracks.values())


class CommitSampler:
    """Committed offsets and lag of the worker's groups, with one admin client and one consumer."""

    def __init__(self, settings: KafkaSettings, app_id: str) -> None:
        topics, partitions = settings.topics, range(settings.partitions)
        self.groups = {
            f"{app_id}-normalize": [TopicPartition(topics.raw, p) for p in partitions],
            app_id: [TopicPartition(t, p) for t in (topics.events, topics.signals) for p in partitions],
        }
        self._admin = AIOKafkaAdminClient(bootstrap_servers=settings.bootstrap_servers)
        self._consumer = AIOKafkaConsumer(bootstrap_servers=settings.bootstrap_servers, group_id=None)

    async def start(self) -> None:
        await self._admin.start()
        await self._consumer.start()

    async def stop(self) -> None:
        await self._consumer.stop()
        await self._admin.close()

    async def sample(self) -> dict[tuple[str, TopicPartition], tuple[int | None, int]]:
        """(group, partition) -> (committed offset or None, records behind it).

        Per group the commits are read before the ends, so a lag of 0 means the group had
        committed everything its topics held at that moment; the normalize group comes first,
        so once it has drained, the events it produced are all in the ends read for Faust's group.
        """
        out: dict[tuple[str, TopicPartition], tuple[int | None, int]] = {}
        for group, tps in self.groups.items():
            offsets = await self._admin.list_consumer_group_offsets(group, partitions=tps)
            ends = await self._consumer.end_offsets(tps)
            starts = await self._consumer.beginning_offsets(tps)
            for tp in tps:
                meta = offsets.get(tp)
                committed = meta.offset if meta is not None and meta.offset >= 0 else None
                position = max(committed if committed is not None else 0, starts[tp])
                out[(group, tp)] = (committed, max(ends[tp] - position, 0))
        return out


async def repairs_on_metrics(worker: WorkerProcess) -> float | None:
    """Stalled-partition repairs counted on the worker's /metrics (None: not answered or no such metric)."""
    text = await metrics_text(worker.url)
    if text is None:
        return None
    values = [
        float(line.rpartition(" ")[2])
        for line in text.splitlines()
        if line.startswith(REPAIRS_METRIC) and not line.startswith(f"{REPAIRS_METRIC}_created")
    ]
    return sum(values) if values else None


async def watch_drain(worker: WorkerProcess, sampler: CommitSampler, started: float) -> CommitWatch:
    """Sample until every lag is zero; fail at the first problem or when the deadline passes."""
    watch = CommitWatch(started)
    while True:
        if worker.proc.poll() is not None:
            raise AssertionError(f"the worker exited with {worker.proc.returncode}:\n{worker.log_tail()}")
        now = time.monotonic()
        try:
            sample = await sampler.sample()
        except KafkaError as exc:
            # Before the first group exists, a fresh broker has no coordinator yet (its offsets
            # topic is created on demand): sample again; the deadline bounds this too.
            sample, watch.error = {}, repr(exc)
        problems = watch.observe(sample, now)
        rereads = REREAD.findall(worker.log.read_text(errors="replace"))
        if rereads:
            problems.append(f"the worker read partitions again ({len(rereads)} times), first: {rereads[0]}")
        assert not problems, f"after {now - started:.0f}s, lag {watch.lags()}: " + "; ".join(problems)
        if watch.drained():
            return watch
        if now - started > DEADLINE_S:
            raise AssertionError(
                f"lag left after {DEADLINE_S:.0f}s: {watch.lags()} (peak {dict(watch.peak_lag)}); "
                f"partitions (committed, lag): {watch.positions()}; last sampling error: {watch.error}"
            )
        await asyncio.sleep(SAMPLE_EVERY_S)  # poll interval of the sampler, not a synchronisation


async def last_changes(
    settings: KafkaSettings, expected: dict[bytes, FinalStatus], within: float
) -> dict[bytes, FinalStatus]:
    """Read the changes topic from the start until the last change of every expected message says
    its expected final status (or `within` passes); returns the last change read per message."""
    change_codec = codec("status_change")
    consumer = AIOKafkaConsumer(
        settings.topics.changes,
        bootstrap_servers=settings.bootstrap_servers,
        group_id=None,
        auto_offset_reset="earliest",
        max_partition_fetch_bytes=4 * 1024 * 1024,
    )
    await consumer.start()
    latest: dict[bytes, FinalStatus] = {}
    matched = 0
    deadline = time.monotonic() + within
    try:
        while matched < len(expected) and time.monotonic() < deadline:
            batches = await consumer.getmany(timeout_ms=200, max_records=10_000)
            for batch in batches.values():
                for record in batch:
                    final = final_of_change(change_codec.decode(record.value))
                    want, was = expected.get(record.key), latest.get(record.key)
                    latest[record.key] = final
                    matched += (final == want) - (was == want) if want is not None else 0
    finally:
        await consumer.stop()
    return latest


@pytest.mark.timeout(DEADLINE_S + 420)  # preparing, producing and the end-state reads come on top
async def test_a_backlog_drains_with_commits_always_moving_and_nothing_read_again(
    kafka_settings: KafkaSettings, start_worker: WorkerFactory, unique_id: str
) -> None:
    workload = generate(WEBHOOKS, seed=5)
    reference = reference_fold(list(workload.webhooks))
    finals = {key.encode(): f for key, state in reference.items() if (f := final_of_state(state)) is not None}
    await ensure_topics(kafka_settings)
    written = await produce(
        kafka_settings.bootstrap_servers,
        kafka_settings.topics.raw,
        ((w.request_id.encode(), w.to_avro()) for w in workload.webhooks),
    )
    assert written == WEBHOOKS

    sampler = CommitSampler(kafka_settings, f"statusflow-{unique_id}")  # start_worker's app id
    await sampler.start()
    try:
        started = time.monotonic()
        worker = start_worker(**FAST)
        watch = await watch_drain(worker, sampler, started)
        drained_s = time.monotonic() - started
    finally:
        await sampler.stop()

    latest = await last_changes(kafka_settings, finals, within=120)
    wrong = {key: (latest.get(key), want) for key, want in finals.items() if latest.get(key) != want}
    assert not wrong, (
        f"{len(wrong)} of {len(finals)} messages end wrong on the changes topic, e.g. {list(wrong.items())[:3]}"
    )
    keys = random.Random(5).sample(sorted(reference), min(TABLE_SAMPLE, len(reference)))
    await wait_for_table(worker, {key: reference[key] for key in keys})
    repairs = await repairs_on_metrics(worker)
    assert not repairs, f"{repairs} stalled-partition repairs on the worker's /metrics"
    rereads = REREAD.findall(worker.log.read_text(errors="replace"))
    assert not rereads, rereads[:3]
    longest = {k: round(v) for k, v in watch.longest_still.items()}
    print(  # noqa: T201 - the run's figures (shown with -rA)
        f"backlog liveness: webhooks={WEBHOOKS} messages={len(finals)} drained_s={drained_s:.0f} "
        f"samples={watch.samples} longest_still_with_lag_s={longest} peak_lag={dict(watch.peak_lag)}"
    )
