"""Full-stack part of `make bench`: receiver → Kafka → worker under paced live traffic.

On the bench's private broker: a real receiver (`python -m receiver`, development mode, loopback),
a real worker (`python -m streams`, RocksDB store in a temp dir) and, in the bench process, a load
generator pacing sample webhooks (bench/live.py: open loop, up to IN_FLIGHT = 256 in flight, fresh message ids per
step) at the receiver.

**Lag.** The total lag L is the sum of every consumer lag of the worker: group `<app_id>-normalize`
on the raw topic and group `<app_id>` on events and signals (measured as the worker's own gauge:
streams/lag.py). It is sampled every 3 s from the start of a step of S seconds
(STATUSFLOW_BENCH_STEP_S, default 120) at a target rate r. With A the largest sample of the first
third of the step and C the largest of the last third, and w the rate at which records are
written to the three topics during the step (their end offsets: about three records a webhook,
raw, events and channel signals, more when batches are small), the lag is **bounded** when

1. C <= max(2 A, w x 2 s) (it does not keep growing; 2 s of traffic is noise of commits and batches),
2. L never exceeds w x 10 s (the step is ended there: ten seconds of backlog is not live),
3. within 10 s after the step's last webhook is acknowledged, L drains to at most max(50, w x 0.1 s),
4. and the receiver acknowledged at least 99 % of what was sent.

Lags are counted in records, so their bounds are too: a webhook is one raw record but only part
of an events bundle and of a channel-signals record.

**Sustainable rate**: the highest acknowledged rate of a step whose lag was bounded. The search
starts at half the isolated pipeline rate of the `pipeline` part of the same run (1,000/s when
that part did not run), doubles after a bounded step until one is not, then bisects between the
highest bounded and the lowest unbounded rate (STATUSFLOW_BENCH_STEPS steps, default 4, fewer when
the budget is short). After an unbounded step the next rate is also capped at 95 % of what the worker
processed in it (acknowledged rate minus lag growth), so a far-off start costs no step per halving.
A step whose receiver acknowledged less than 90 % of the target stops the search upwards (the
receiver, not the worker, is the limit).

**Freshness**: one step at half the sustainable rate with the receiver's answers kept. The latency
of a change is its CreateTime on the changes topic (stamped by the worker's producer) minus the
time the load generator got the 200 of the first webhook that carried the event the change names
(`event_id`; the raw envelopes of the step, keyed by request id, tie request ids to event ids).
p99 from the receiver's own receipt stamp (`received_at`) is reported beside it.
Then the **reference check**: the last change of every message of the step equals what the
reference fold (statusflow_cli.samples.reference_fold) of the step's raw envelopes says, and
200 messages asked through the worker's GET /messages/{provider}/{channel}/{id} answer their state view.

**Backlog drain**: the worker stops, the receiver accepts STATUSFLOW_BENCH_BACKLOG webhooks (default
300,000) as fast as it can (at most 5,000/s), the worker starts again; the rate is the backlog over
the time from the first change the restarted worker writes to the moment every lag is zero (sampled
every 0.5 s); start-up is reported apart. Warnings of the worker that it reads records again
("reading again", "reading them again") are counted: the goal is none.
"""

from __future__ import annotations

import asyncio
import dataclasses
import math
import os
import time
from pathlib import Path
from typing import Any

from bench.harness import Budget
from bench.live import (
    Lag,
    LastChanges,
    Reference,
    Stack,
    check_api,
    compare,
    count_rereads,
    end_offsets,
    pct,
    scan,
    warm_up,
    webhooks,
)
from schemas.codec import codec
from statusflow_cli.http_load import Sent, send_paced
from statusflow_cli.loadgen import MAX_RATE
from streams.core.normalizer import normalize

SAMPLE_S = 3.0
#: Requests the load generator keeps in flight at most. An open-loop sender must not cap them
#: below rate x latency, or it measures its own cap: with 64, every step acknowledged ~1,520/s
#: whatever its target (1,542/s or 3,084/s), which is 64 / 42 ms, the receiver's latency on a
#: busy machine. Providers' fleets send from many connections at once.
IN_FLIGHT = 256
DRAIN_S = 10.0
CEILING_S = 10.0
NOISE_S = 2.0
START_FRACTION = 0.5
DEFAULT_START = 1_000.0
MIN_RATE = 10.0


def _env_float(name: str, default: float) -> float:
    return float(os.environ.get(name, default))


@dataclasses.dataclass(frozen=True)
class Plan:
    """Step length, search steps and backlog size of one run."""

    step_s: float = 120.0
    steps: int = 4
    backlog: int = 300_000

    @classmethod
    def from_env(cls) -> Plan:
        """STATUSFLOW_BENCH_STEP_S, STATUSFLOW_BENCH_STEPS, STATUSFLOW_BENCH_BACKLOG (shorter for development)."""
        return cls(
            step_s=max(6.0, _env_float("STATUSFLOW_BENCH_STEP_S", cls.step_s)),
            steps=max(1, int(_env_float("STATUSFLOW_BENCH_STEPS", cls.steps))),
            backlog=max(100, int(_env_float("STATUSFLOW_BENCH_BACKLOG", cls.backlog))),
        )


def planned_s(plan: Plan, pipeline_rate: float | None = None) -> float:
    """Seconds the part takes at most, roughly: start-up, the search, freshness, backlog."""
    return 60 + plan.steps * (plan.step_s + 25) + _fixed_s(plan.step_s, plan.backlog, pipeline_rate)


def _fixed_s(step_s: float, backlog: int, pipeline_rate: float | None) -> float:
    # Freshness step and its reads; backlog accepted at ~2,000/s and drained at ~0.8x the pipeline.
    drain_rate = 0.8 * (pipeline_rate or 3_000)
    return (step_s + 60) + backlog / 2_000 + backlog / drain_rate + 60


def fit(plan: Plan, left_s: float, pipeline_rate: float | None) -> tuple[int, int]:
    """(search steps, backlog) scaled down to the time left: steps first, then the backlog."""
    steps, backlog = plan.steps, plan.backlog
    while steps > 1 and 60 + steps * (plan.step_s + 25) + _fixed_s(plan.step_s, backlog, pipeline_rate) > left_s:
        steps -= 1
    while backlog > 10_000 and 60 + steps * (plan.step_s + 25) + _fixed_s(plan.step_s, backlog, pipeline_rate) > left_s:
        backlog = max(10_000, backlog // 2)
    return steps, backlog


@dataclasses.dataclass
class Step:
    """One held rate: what was sent and how the lag behaved."""

    target_rate: float
    step_s: float
    sent: Sent
    samples: list[tuple[float, int]]
    written: list[tuple[float, int]] = dataclasses.field(default_factory=list)  # records written so far
    drain_s: float | None = None
    drain_lag: int | None = None
    ended: str | None = None  # why the step ended early
    lag_max_by: dict[str, int] = dataclasses.field(default_factory=dict)  # per group and topic

    @property
    def records_rate(self) -> float:
        """w: records written per second to the watched topics (3 a webhook until measured)."""
        if len(self.written) >= 2:
            (t0, w0), (t1, w1) = self.written[0], self.written[-1]
            if t1 - t0 >= 1:
                return max((w1 - w0) / (t1 - t0), 1.0)
        return 3 * self.target_rate

    @property
    def allowance(self) -> float:
        """The growth a bounded lag may show: max(2 A, w x 2 s)."""
        return max(2 * self.first_third_max, self.records_rate * NOISE_S)

    @property
    def first_third_max(self) -> int:
        """A: the largest lag of the first third."""
        return max((lag for t, lag in self.samples if t <= self.step_s / 3), default=0)

    @property
    def last_third_max(self) -> int | None:
        """C: the largest lag of the last third (None when the step ended before it)."""
        last = [lag for t, lag in self.samples if t >= self.step_s * 2 / 3]
        return max(last) if last else None

    @property
    def drain_limit(self) -> float:
        """What "drained" allows: max(50, w x 0.1 s)."""
        return max(50.0, self.records_rate * 0.1)

    @property
    def bounded(self) -> bool:
        """The definition of the module docstring."""
        last = self.last_third_max
        acked_enough = self.sent.sent > 0 and self.sent.acked >= 0.99 * self.sent.sent
        return (
            self.ended is None
            and last is not None
            and last <= self.allowance
            and max((lag for _, lag in self.samples), default=0) <= self.records_rate * CEILING_S
            and self.drain_lag is not None
            and self.drain_lag <= self.drain_limit
            and acked_enough
        )

    @property
    def worker_rate(self) -> float | None:
        """What the worker processed per second: acknowledged rate minus the lag's growth (in
        webhooks: records over records per webhook)."""
        if len(self.samples) < 2 or self.sent.rate <= 0:
            return None
        (t0, l0), (t1, l1) = self.samples[0], self.samples[-1]
        if t1 - t0 < 1:
            return None
        per_webhook = self.records_rate / self.sent.rate
        return max(0.0, self.sent.rate - (l1 - l0) / (t1 - t0) / per_webhook)

    @property
    def receiver_bound(self) -> bool:
        """The receiver acknowledged less than 90 % of the target rate."""
        return self.sent.rate < 0.9 * self.target_rate

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready figures."""
        worker_rate = self.worker_rate
        return {
            **self.sent.as_dict(),
            "step_s": self.step_s,
            "lag_first_third_max": self.first_third_max,
            "lag_last_third_max": self.last_third_max,
            "lag_allowance": round(self.allowance),
            "lag_max": max((lag for _, lag in self.samples), default=None),
            "lag_ceiling": round(self.records_rate * CEILING_S),
            "records_per_s": round(self.records_rate, 1),
            "lag_max_by": self.lag_max_by,
            "drain_s": None if self.drain_s is None else round(self.drain_s, 1),
            "drain_lag": self.drain_lag,
            "ended": self.ended,
            "bounded": self.bounded,
            "receiver_bound": self.receiver_bound,
            "worker_rate": None if worker_rate is None else round(worker_rate, 1),
            "lag_samples": [[round(t, 1), lag] for t, lag in self.samples],
        }


def _say(text: str) -> None:
    print(text, flush=True)


async def run_step(stack: Stack, rate: float, step_s: float, label: str, *, keep_acks: bool = False) -> Step:
    """Hold `rate` for `step_s` seconds with fresh message ids, sampling the lag; then watch it drain."""
    lag = stack.lag()
    count = max(1, math.floor(rate * step_s))
    sent = Sent(target_rate=rate)
    step = Step(target_rate=min(rate, MAX_RATE), step_s=step_s, sent=sent, samples=[])
    stop_when = asyncio.Event()
    source = webhooks(f"{stack.app_id}-{label}-", seed=len(label))
    started = time.monotonic()
    sender = asyncio.create_task(
        send_paced(
            stack.receiver_url,
            source,
            rate,
            count,
            concurrency=IN_FLIGHT,
            keep_acks=keep_acks,
            within_s=step_s,  # a sender behind schedule stops with the step: the achieved rate is lower
            sent=sent,
            stop_when=stop_when,
        )
    )
    while not sender.done():
        by = await lag.measure()
        total = sum(by.values())
        step.samples.append((time.monotonic() - started, total))
        step.written.append((time.monotonic() - started, lag.written))
        for key, value in by.items():
            step.lag_max_by[key] = max(value, step.lag_max_by.get(key, 0))
        dead = stack.alive()
        if dead is not None:
            step.ended = dead
        elif total > step.records_rate * CEILING_S:
            step.ended = f"lag {total} above {CEILING_S:.0f}s of traffic"
        if step.ended is not None:
            stop_when.set()
            break
        await asyncio.wait({sender}, timeout=SAMPLE_S)
    await sender
    if step.ended is None:
        step.drain_s, step.drain_lag = await lag.wait_below(int(step.drain_limit), DRAIN_S)
    return step


async def settle(stack: Stack, step: Step, left_s: float) -> bool:
    """Wait until the lag is zero again before the next step; False when it does not get there."""
    behind = max((lag for _, lag in step.samples[-1:]), default=0)
    speed = max(step.worker_rate or 0.0, 50.0)
    within = min(max(30.0, 3 * behind / speed), 240.0, max(10.0, left_s))
    _, total = await stack.lag().wait_below(0, within)
    return total == 0


async def search(
    stack: Stack, start: float, steps: int, step_s: float, *, budget: Budget, figures: list[dict[str, Any]]
) -> list[Step]:
    """Bisection over held rates (see the module docstring); each step's figures go to `figures`."""
    done: list[Step] = []
    lo, hi = 0.0, math.inf
    rate = min(start, MAX_RATE)
    for i in range(steps):
        step = await run_step(stack, rate, step_s, f"s{i}")
        done.append(step)
        figures.append(step.as_dict())
        _say(
            f"  step {i + 1}/{steps} at {rate:,.0f}/s: {'bounded' if step.bounded else 'NOT bounded'} "
            f"(acked {step.sent.rate:,.0f}/s, lag A {step.first_third_max} C {step.last_third_max} "
            f"max {max((g for _, g in step.samples), default=0)}, drained to {step.drain_lag}"
            f"{', ' + step.ended if step.ended else ''})\n"
            f"    lag every {SAMPLE_S:.0f}s: {' '.join(str(g) for _, g in step.samples)}; "
            f"max by stage {step.lag_max_by}"
        )
        if step.bounded:
            lo = max(lo, rate)
            if step.receiver_bound:
                hi = min(hi, rate)
        else:
            hi = min(hi, rate)
        if stack.alive() is not None:
            break
        if i == steps - 1:
            break
        if not await settle(stack, step, budget.left()):
            _say("  the lag did not drain: fresh topics and processes for the next step")
            stack.stop()
            await stack.start()
            await warm_up(stack)
        nxt = next_rate(lo, hi, step)
        if nxt is None:
            break
        rate = nxt
    return done


def next_rate(lo: float, hi: float, step: Step) -> float | None:
    """The next rate to hold between the highest bounded (`lo`) and the lowest unbounded (`hi`)
    rate so far, None when the search is done (at the cap, or within 10 %)."""
    if hi == math.inf:
        return None if lo >= MAX_RATE else min(MAX_RATE, 2 * lo)
    if hi - lo <= 0.1 * hi:
        return None
    mid = (lo + hi) / 2
    hint = step.worker_rate
    if not step.bounded and hint is not None and lo < 0.95 * hint < mid:
        mid = 0.95 * hint
    rate = max(MIN_RATE, mid)
    return None if rate >= hi else rate


def sustainable(steps: list[Step]) -> Step | None:
    """The bounded step with the highest acknowledged rate."""
    bounded = [s for s in steps if s.bounded]
    return max(bounded, key=lambda s: s.sent.rate) if bounded else None


async def freshness(stack: Stack, rate: float, step_s: float) -> dict[str, Any]:
    """One step at `rate` with the answers kept: latency to the changes topic, then the reference check."""
    topics = stack.topics.topics
    raw_start = await end_offsets(stack.bootstrap, topics.raw)
    changes_start = await end_offsets(stack.bootstrap, topics.changes)
    step = await run_step(stack, rate, step_s, "fresh", keep_acks=True)
    waited, left = await stack.lag().wait_below(0, 60)
    acks = step.sent.acks or {}
    first_ack: dict[str, int] = {}
    first_receipt: dict[str, int] = {}
    reference = Reference()

    def on_raw(records: list[tuple[bytes | None, bytes, int]]) -> None:
        for key, value, _ in records:
            ack = acks.get(key.decode()) if key is not None else None
            for event in normalize(value).events:
                eid = event.event_id
                if ack is not None and ack < first_ack.get(eid, ack + 1):
                    first_ack[eid] = ack
                if event.received_at < first_receipt.get(eid, event.received_at + 1):
                    first_receipt[eid] = event.received_at
        reference.add(records)

    await scan(stack.bootstrap, topics.raw, on_raw, start=raw_start)
    changes = LastChanges()
    change_codec = codec("status_change")
    from_ack: list[float] = []
    from_receipt: list[float] = []
    uncorrelated = 0

    def on_change(records: list[tuple[bytes | None, bytes, int]]) -> None:
        nonlocal uncorrelated
        for _, value, ts in records:
            change = change_codec.decode(value)
            changes.take(change)
            eid = change["event_id"]
            if eid in first_ack:
                from_ack.append(ts - first_ack[eid])
            else:
                uncorrelated += 1
            if eid in first_receipt:
                from_receipt.append(ts - first_receipt[eid])

    await scan(stack.bootstrap, topics.changes, on_change, start=changes_start)
    from_ack.sort()
    from_receipt.sort()
    check = compare(reference.states, changes)
    api = await check_api(stack.worker_url, reference.states)
    return {
        "step": step.as_dict(),
        "drained_after_s": round(waited, 1),
        "lag_left": left,
        "changes": changes.records,
        "correlated": len(from_ack),
        "uncorrelated": uncorrelated,
        "p50_ms": round(pct(from_ack, 0.5), 1) if from_ack else None,
        "p90_ms": round(pct(from_ack, 0.9), 1) if from_ack else None,
        "p99_ms": round(pct(from_ack, 0.99), 1) if from_ack else None,
        "max_ms": round(from_ack[-1], 1) if from_ack else None,
        "p50_from_receipt_ms": round(pct(from_receipt, 0.5), 1) if from_receipt else None,
        "p99_from_receipt_ms": round(pct(from_receipt, 0.99), 1) if from_receipt else None,
        "raw_envelopes": reference.envelopes,
        "reference": check.as_dict(),
        "api": api,
    }


async def backlog(stack: Stack, count: int, within_s: float) -> dict[str, Any]:
    """Worker stopped, `count` webhooks accepted, worker started: time until every lag is zero."""
    topics = stack.topics.topics
    stack.stop_worker()
    source = webhooks(f"{stack.app_id}-backlog-")
    # As fast as the receiver goes (at most 5,000/s); given up below 500/s on average.
    accepted = await send_paced(
        stack.receiver_url, source, MAX_RATE, count, concurrency=IN_FLIGHT, within_s=count / 500 + 30
    )
    _say(f"  backlog accepted: {accepted.as_dict()}")
    lag: Lag = stack.lag()
    lag_before = await lag.total()
    changes_start = await end_offsets(stack.bootstrap, topics.changes)
    first_log = len(stack.worker_logs)
    started = time.time()
    ready_s = await stack.start_worker()
    waited, left = await lag.wait_below(0, within_s)
    done = time.time()
    first_ms: list[int] = []

    def on_change(records: list[tuple[bytes | None, bytes, int]]) -> None:
        if records:
            first_ms.append(min(ts for _, _, ts in records))

    await scan(stack.bootstrap, topics.changes, on_change, start=changes_start)
    first = min(first_ms) / 1000 if first_ms else None
    processing_s = done - first if first is not None and left == 0 else None
    rate = accepted.acked / processing_s if processing_s else None
    rereads = sum(count_rereads(log) for log in stack.worker_logs[first_log:])
    return {
        "requested": count,
        "accepted": accepted.as_dict(),
        "lag_before": lag_before,
        "ready_s": round(ready_s, 2),
        "start_to_first_s": round(first - started, 2) if first is not None else None,
        "start_to_zero_lag_s": round(ready_s + waited, 1) if left == 0 else None,
        "processing_s": round(processing_s, 2) if processing_s else None,
        "lag_left": left,
        "complete": left == 0,
        "webhooks_per_s": round(rate, 1) if rate else None,
        "rereads": rereads,
    }


async def run(
    bootstrap: str,
    tmp: Path,
    budget: Budget,
    pipeline_rate: float | None,
    *,
    plan: Plan,
    out: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The whole part; figures into `out` as they come (a failure keeps those so far)."""
    budget.release()
    steps, backlog_size = fit(plan, budget.left(), pipeline_rate)
    start = START_FRACTION * pipeline_rate if pipeline_rate else DEFAULT_START
    out = {} if out is None else out
    out.update(
        step_s=plan.step_s,
        steps_planned=plan.steps,
        steps_fitted=steps,
        backlog_planned=plan.backlog,
        pipeline_rate=pipeline_rate,
        start_rate=round(min(start, MAX_RATE), 1),
        store="rocksdb",
    )
    stack = Stack(bootstrap, tmp, "fullstack")
    try:
        await stack.start()
        out["warm_up_s"] = round(await warm_up(stack), 1)
        found = await search(stack, start, steps, plan.step_s, budget=budget, figures=out.setdefault("steps", []))
        best = sustainable(found)
        if best is not None:
            out["sustainable_rate"] = round(best.sent.rate, 1)
            fresh_rate = best.sent.rate / 2
        else:
            out["sustainable_rate"] = None
            hints = [s.worker_rate for s in found if s.worker_rate] + [min(s.target_rate for s in found)]
            fresh_rate = max(MIN_RATE, min(hints) / 2)
            out["note"] = f"no rate tried was sustained; freshness at half of {min(hints):,.0f}/s"
        if out["sustainable_rate"] and pipeline_rate:
            out["ratio_pipeline"] = round(out["sustainable_rate"] / pipeline_rate, 3)
        _say(f"  sustainable: {out['sustainable_rate']}/s (ratio to pipeline {out.get('ratio_pipeline')})")
        if stack.alive() is not None or await stack.lag().total() > 0:
            await stack.lag().wait_below(0, 120)
        out["freshness"] = await freshness(stack, fresh_rate, plan.step_s)
        f = out["freshness"]
        _say(
            f"  freshness at {fresh_rate:,.0f}/s: p50 {f['p50_ms']} ms p99 {f['p99_ms']} ms "
            f"({f['correlated']} changes); reference {f['reference']['matched']}/{f['reference']['messages']}, "
            f"API {f['api']['matched']}/{f['api']['asked']}"
        )
        within = max(120.0, min(budget.left() - 30, 3 * backlog_size / max(pipeline_rate or 1_000, 300)))
        out["backlog"] = await backlog(stack, backlog_size, within)
        b = out["backlog"]
        if b["webhooks_per_s"] and pipeline_rate:
            b["ratio_pipeline"] = round(b["webhooks_per_s"] / pipeline_rate, 3)
        _say(f"  backlog: {b}")
    finally:
        out["rereads_total"] = stack.rereads()
        out["worker_logs"] = [str(p) for p in stack.worker_logs]
        stack.stop()
    return out
