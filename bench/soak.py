"""`make soak` (`python -m bench.soak`): the dev stack under steady live traffic for a while.

A private broker, a receiver and a worker (RocksDB store) as in bench/fullstack.py; sample webhooks
paced at one rate (default: half the sustainable rate in bench/results/latest.json, else 1,000/s)
for SOAK_MINUTES (default 25, at most 30). Every 30 s: the resident memory (VmRSS of
/proc/<pid>/status) of the receiver, the worker, the worker's normalize child process and the
broker's java; every consumer lag of the worker; the receiver's latency (p50/p99 of the webhooks
acknowledged in that interval, from the send). The lag is also sampled every 5 s for the
"bounded" judgement of bench/fullstack.py (first third against last third of the run, never above
10 s of traffic, drained within 10 s after the load).

At the end, once the lag is zero: the last change of every message on the changes topic against
the reference fold (statusflow_cli.samples.reference_fold) of every raw envelope the receiver
wrote, and 200 messages through the worker's query API.

Memory growth over the second half, per process: the mean of the last three samples against the
mean of the first three samples from the middle of the run on (fewer in short runs); goal < 10 %.
The worker's RocksDB memory budget (STATUSFLOW_ROCKSDB_MEMORY_MB, streams/faust_ext/rocksdb_memory.py) is
SOAK_ROCKSDB_MEMORY_MB, 32 by default: the production default (128) fills with the table over
hours, so a worker would still be growing towards it at the end of the run; a budget the run
fills shows whether the worker's memory levels off once its bounds are reached.

Writes bench/results/soak-latest.md (summary and table), soak-latest.csv, soak-latest.png (plot)
and soak-latest.json.
"""

from __future__ import annotations

import argparse
import array
import asyncio
import contextlib
import csv
import dataclasses
import datetime as dt
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson

from bench.fullstack import IN_FLIGHT, Step
from bench.harness import RESULTS, broker_process
from bench.live import LastChanges, Reference, Stack, check_api, compare, pct, scan, warm_up, webhooks
from schemas.event_loop import install_event_loop
from statusflow_cli.http_load import Sent, send_paced
from statusflow_cli.loadgen import MAX_RATE

MAX_MINUTES = 30.0
INTERVAL_S = 30.0
# The worker's RocksDB budget in the soak (see the module docstring).
ROCKSDB_MEMORY_MB = 32
LAG_EVERY_S = 5.0
GROWTH_GOAL = 0.10
PROCESSES = ("receiver", "worker", "normalize child", "broker")


def default_rate() -> tuple[float, str]:
    """Half the sustainable rate of the last `make bench`, else 1,000/s; (rate, where it came from)."""
    latest = RESULTS / "latest.json"
    if latest.exists():
        try:
            sustained = orjson.loads(latest.read_bytes()).get("fullstack", {}).get("sustainable_rate")
        except orjson.JSONDecodeError:
            sustained = None
        if sustained:
            return sustained / 2, f"half the sustainable rate {sustained:,.0f}/s of {latest.name}"
    return 1_000.0, "default (no sustainable rate in bench/results/latest.json)"


def _args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.soak", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--minutes",
        type=float,
        default=float(os.environ.get("SOAK_MINUTES", "25")),
        help=f"how long the load runs (SOAK_MINUTES, default 25, at most {MAX_MINUTES:.0f})",
    )
    parser.add_argument(
        "--rate",
        type=float,
        default=float(os.environ["SOAK_RATE"]) if os.environ.get("SOAK_RATE") else None,
        help=f"webhooks/s (SOAK_RATE; default half the sustainable rate of latest.json, else 1000; at most {MAX_RATE})",
    )
    parser.add_argument(
        "--interval",
        type=float,
        default=float(os.environ.get("SOAK_INTERVAL_S", INTERVAL_S)),
        help="seconds between samples (SOAK_INTERVAL_S, default 30)",
    )
    args = parser.parse_args()
    if not 0 < args.minutes <= MAX_MINUTES:
        parser.error(f"--minutes must be in (0, {MAX_MINUTES:.0f}]")
    if args.rate is not None and not 0 < args.rate <= MAX_RATE:
        parser.error(f"--rate must be in (0, {MAX_RATE}]")
    if not 5 <= args.interval <= 300:
        parser.error("--interval must be in [5, 300] seconds")
    return args


def rss_kb(pid: int | None) -> int | None:
    """VmRSS of a live process in kB (None when it is gone)."""
    if pid is None:
        return None
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except (OSError, ValueError):
        return None
    return None


def children(pid: int) -> list[int]:
    """Live child processes of `pid` (from /proc/*/stat)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def normalize_child(worker_pid: int) -> int | None:
    """The worker's normalize process: its multiprocessing child (not the resource tracker)."""
    best: tuple[int, int] | None = None
    for pid in children(worker_pid):
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        if b"resource_tracker" in cmdline:
            continue
        rss = rss_kb(pid) or 0
        if best is None or rss > best[1]:
            best = (pid, rss)
    return best[0] if best else None


@dataclasses.dataclass
class Row:
    """One sample interval."""

    minute: float
    acked: int
    rate: float
    errors: int
    p50_ms: float | None
    p99_ms: float | None
    lag: int
    lag_max: int
    rss_mb: dict[str, float | None]
    lag_by: dict[str, int]

    def flat(self) -> dict[str, Any]:
        """One CSV row."""
        row: dict[str, Any] = {k: v for k, v in dataclasses.asdict(self).items() if k not in {"rss_mb", "lag_by"}}
        row.update({f"lag_{name}": lag for name, lag in self.lag_by.items()})
        row.update({f"rss_mb_{name.replace(' ', '_')}": mb for name, mb in self.rss_mb.items()})
        return row


def growth(rows: list[Row], name: str) -> float | None:
    """Relative RSS growth of one process over the second half (see the module docstring)."""
    values = [(r.minute, r.rss_mb[name]) for r in rows if r.rss_mb.get(name) is not None]
    if len(values) < 2:
        return None
    half = values[-1][0] / 2
    second = [mb for minute, mb in values if minute >= half and mb is not None]
    if len(second) < 2:
        return None
    k = max(1, min(3, len(second) // 3))
    start, end = sum(second[:k]) / k, sum(second[-k:]) / k
    return (end - start) / start if start else None


async def _sample_lag(stack: Stack, load: Load, started: float, done: asyncio.Event) -> None:
    lag = stack.lag()
    while not done.is_set():
        measured = await lag.measure()
        load.lag_by.clear()
        load.lag_by.update(measured)
        load.lag_samples.append((time.monotonic() - started, sum(measured.values())))
        load.written.append((time.monotonic() - started, lag.written))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(done.wait(), timeout=LAG_EVERY_S)


def _row(
    sent: Sent,
    *,
    minute: float,
    before: tuple[int, int],
    seconds: float,
    lags: list[int],
    pids: dict[str, int | None],
    everything: array.array[float],
    lag_by: dict[str, int],
) -> Row:
    latencies, sent.latencies_ms = sorted(sent.latencies_ms), []
    everything.extend(latencies)
    errors = sum(sent.errors.values())
    acked_before, errors_before = before
    return Row(
        minute=round(minute, 2),
        acked=sent.acked - acked_before,
        rate=round((sent.acked - acked_before) / seconds, 1) if seconds else 0.0,
        errors=errors - errors_before,
        p50_ms=round(pct(latencies, 0.5), 2) if latencies else None,
        p99_ms=round(pct(latencies, 0.99), 2) if latencies else None,
        lag=lags[-1] if lags else 0,
        lag_max=max(lags, default=0),
        rss_mb={name: None if (kb := rss_kb(pid)) is None else round(kb / 1024, 1) for name, pid in pids.items()},
        lag_by=dict(lag_by),
    )


@dataclasses.dataclass
class Load:
    """What the load and the samplers collected."""

    sent: Sent
    rows: list[Row]
    lag_samples: list[tuple[float, int]]
    latencies: array.array[float]  # every latency of the run, compactly
    lag_by: dict[str, int] = dataclasses.field(default_factory=dict)  # the latest sample per group and topic
    written: list[tuple[float, int]] = dataclasses.field(default_factory=list)  # records written to the topics
    error: str | None = None


async def _load(stack: Stack, rate: float, seconds: float, interval: float, pids: dict[str, int | None]) -> Load:
    """The paced load with a row every `interval` and the lag every 5 s."""
    sent = Sent(target_rate=rate)
    load = Load(sent=sent, rows=[], lag_samples=[], latencies=array.array("f"))
    stop_when = asyncio.Event()
    started = time.monotonic()
    source = webhooks(f"{stack.app_id}-")
    sender = asyncio.create_task(
        send_paced(
            stack.receiver_url,
            source,
            rate,
            int(rate * seconds),
            concurrency=IN_FLIGHT,
            sent=sent,
            stop_when=stop_when,
        )
    )
    done = asyncio.Event()
    sampler = asyncio.create_task(_sample_lag(stack, load, started, done))
    first = _row(sent, minute=0.0, before=(0, 0), seconds=0, lags=[], pids=pids, everything=load.latencies, lag_by={})
    load.rows.append(first)
    before, last = (0, 0), started
    while not sender.done():
        await asyncio.wait({sender}, timeout=max(0.0, last + interval - time.monotonic()))
        now = time.monotonic()
        if sender.done() and now - last < 1:
            break
        lags = [lag for t, lag in load.lag_samples if t >= last - started]
        r = _row(
            sent,
            minute=(now - started) / 60,
            before=before,
            seconds=now - last,
            lags=lags,
            pids=pids,
            everything=load.latencies,
            lag_by=load.lag_by,
        )
        load.rows.append(r)
        before, last = (sent.acked, sum(sent.errors.values())), now
        print(
            f"  {r.minute:5.1f} min: {r.rate:,.0f}/s p99 {r.p99_ms} ms lag {r.lag} {r.lag_by} (max {r.lag_max}) "
            f"rss {r.rss_mb}",
            flush=True,
        )
        if (dead := stack.alive()) is not None:
            load.error = dead
            stop_when.set()
    await sender
    done.set()
    await sampler
    return load


async def soak(broker_pid: int, bootstrap: str, rate: float, minutes: float, interval: float) -> dict[str, Any]:
    """Run the load, sample, check the end state; the figures."""
    tmp = Path(tempfile.mkdtemp(prefix="statusflow-soak-"))
    stack = Stack(bootstrap, tmp, "soak")
    out: dict[str, Any] = {"rate": rate, "minutes": minutes, "interval_s": interval}
    try:
        await stack.start()
        out["warm_up_s"] = round(await warm_up(stack), 1)
        assert stack.receiver is not None and stack.worker is not None
        pids: dict[str, int | None] = {
            "receiver": stack.receiver.pid,
            "worker": stack.worker.pid,
            "normalize child": normalize_child(stack.worker.pid),
            "broker": broker_pid,
        }
        out["pids"] = pids
        load = await _load(stack, rate, minutes * 60, interval, pids)
        if load.error:
            out["error"] = load.error
        sent = load.sent
        sent.latencies_ms = sorted(load.latencies)  # the whole run's p50 and p99
        out["load"] = sent.as_dict()
        sent.latencies_ms = []
        judged = Step(target_rate=rate, step_s=minutes * 60, sent=sent, samples=load.lag_samples, written=load.written)
        judged.drain_s, judged.drain_lag = await stack.lag().wait_below(int(judged.drain_limit), 10)
        out["lag"] = {
            k: v
            for k, v in judged.as_dict().items()
            if k.startswith("lag_") or k in {"bounded", "drain_s", "drain_lag", "ended"}
        }
        out["rows"] = [r.flat() for r in load.rows]
        out["growth"] = {name: growth(load.rows, name) for name in pids}
        out["drained_s"], out["lag_left"] = await stack.lag().wait_below(0, 180)
        out["fold"] = await fold_check(stack)
        out["rereads"] = stack.rereads()
    finally:
        stack.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    return out


async def fold_check(stack: Stack) -> dict[str, Any]:
    """Every message's last change against the reference fold of every raw envelope; 200 via the API."""
    topics = stack.topics.topics
    reference = Reference()
    await scan(stack.bootstrap, topics.raw, reference.add, within_s=900)
    changes = LastChanges()
    await scan(stack.bootstrap, topics.changes, changes.add, within_s=900)
    check = compare(reference.states, changes)
    api = await check_api(stack.worker_url, reference.states)
    return {"raw_envelopes": reference.envelopes, "changes": changes.records, **check.as_dict(), "api": api}


def goals(r: dict[str, Any]) -> list[dict[str, Any]]:
    """Memory growth per process, bounded lags, the fold check."""
    out = []
    for name, value in r.get("growth", {}).items():
        met = value is not None and value < GROWTH_GOAL
        out.append({"name": f"{name} RSS growth over the second half", "value": value, "target": "< 10 %", "met": met})
    lag = r.get("lag", {})
    out.append(
        {"name": "every lag bounded", "value": lag.get("bounded"), "target": "yes", "met": bool(lag.get("bounded"))}
    )
    fold = r.get("fold", {})
    api = fold.get("api", {})
    fold_ok = bool(fold.get("ok")) and api.get("matched") == api.get("asked")
    value = f"{fold.get('matched')}/{fold.get('messages')}, API {api.get('matched')}/{api.get('asked')}"
    out.append({"name": "end state equals the reference fold", "value": value, "target": "all", "met": fold_ok})
    return out


def _pctf(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:+.1f} %"


def markdown(r: dict[str, Any]) -> str:
    """The summary and the table."""
    load = r.get("load", {})
    lag = r.get("lag", {})
    lines = [
        f"# Soak {r['date']}",
        "",
        f"{r['machine']['cores']} cores; {r['minutes']:g} min at {r['rate']:,.0f} webhooks/s ({r['rate_source']}); "
        f"receiver, worker (RocksDB store, {r.get('rocksdb_memory_mb', '?')} MB budget) and broker on loopback; "
        f"samples every {r['interval_s']:.0f} s; "
        f"whole run {r['elapsed_s']:.0f} s.",
        "",
        f"Load: sent {load.get('sent', 0):,}, acknowledged {load.get('acked', 0):,} ({load.get('rate', 0):,.1f}/s), "
        f"errors {load.get('errors') or 'none'}; latency p50 {load.get('p50_ms')} ms, p99 {load.get('p99_ms')} ms.",
        f"Lag: first-third max {lag.get('lag_first_third_max')}, last-third max {lag.get('lag_last_third_max')} "
        f"(allowed {lag.get('lag_allowance')}), max {lag.get('lag_max')} (ceiling {lag.get('lag_ceiling')}), "
        f"{lag.get('drain_lag')} after 10 s "
        f"of drain: {'bounded' if lag.get('bounded') else '**not bounded**'}. "
        f"Worker re-read warnings: {r.get('rereads')}.",
        "",
        "| goal | value | target | met |",
        "| --- | --- | --- | --- |",
        *(
            f"| {g['name']} | {_pctf(g['value']) if isinstance(g['value'], float) else g['value']} | {g['target']} | "
            f"{'yes' if g['met'] else '**no**'} |"
            for g in r.get("goals", [])
        ),
        "",
        "| min | acked/s | errors | p50 ms | p99 ms | lag | lag max | "
        + " | ".join(f"{name} MB" for name in PROCESSES)
        + " |",
        "| " + " | ".join(["---"] * (7 + len(PROCESSES))) + " |",
    ]
    for row in r.get("rows", []):
        cells = [row["minute"], row["rate"], row["errors"], row["p50_ms"], row["p99_ms"], row["lag"], row["lag_max"]]
        cells += [row.get(f"rss_mb_{name.replace(' ', '_')}") for name in PROCESSES]
        lines.append(
            "| " + " | ".join("-" if c is None else f"{c:g}" if isinstance(c, float) else str(c) for c in cells) + " |"
        )
    fold = r.get("fold", {})
    if fold.get("examples"):
        lines += ["", f"Fold mismatches, e.g.: `{orjson.dumps(fold['examples'][:2]).decode()[:600]}`"]
    if r.get("error"):
        lines += ["", f"**Stopped early**: {r['error']}"]
    return "\n".join(lines) + "\n"


def write_csv(rows: list[dict[str, Any]], path: Path) -> None:
    """The samples as CSV."""
    if not rows:
        path.write_text("", encoding="utf-8")
        return
    fields = list(dict.fromkeys(k for row in rows for k in row))  # the first row has no lag breakdown yet
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows)


def plot(r: dict[str, Any], path: Path) -> None:
    """RSS per process, the lag and the receiver's latency against time."""
    import matplotlib  # noqa: PLC0415 - a dev extra, only for this picture

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    rows = r.get("rows", [])
    minutes = [row["minute"] for row in rows]
    fig, (mem, lag, lat) = plt.subplots(3, 1, figsize=(9, 9), sharex=True)
    for name in PROCESSES:
        mem.plot(minutes, [row.get(f"rss_mb_{name.replace(' ', '_')}") for row in rows], marker=".", label=name)
    mem.set_ylabel("RSS (MB)")
    mem.legend(loc="upper left", fontsize="small")
    mem.set_title(f"soak: {r['rate']:,.0f} webhooks/s for {r['minutes']:g} min ({r['date']})")
    samples = r.get("lag", {}).get("lag_samples", [])
    lag.plot([t / 60 for t, _ in samples], [v for _, v in samples], color="tab:red")
    lag.set_ylabel("total consumer lag")
    lat.plot(minutes, [row["p50_ms"] for row in rows], marker=".", label="p50")
    lat.plot(minutes, [row["p99_ms"] for row in rows], marker=".", label="p99")
    lat.set_ylabel("receiver latency (ms)")
    lat.set_xlabel("minutes")
    lat.legend(loc="upper left", fontsize="small")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main() -> None:
    """Soak, then write the results."""
    from bench.__main__ import machine, preflight  # noqa: PLC0415 - the bench's entry module

    args = _args()
    preflight()
    rate, source = (args.rate, "--rate/SOAK_RATE") if args.rate is not None else default_rate()
    rate = min(rate, MAX_RATE)
    started = time.monotonic()
    budget_mb = int(os.environ.get("SOAK_ROCKSDB_MEMORY_MB", str(ROCKSDB_MEMORY_MB)))
    os.environ["STATUSFLOW_ROCKSDB_MEMORY_MB"] = str(budget_mb)  # the stack's processes inherit it
    print(f"soak: {args.minutes:g} min at {rate:,.0f} webhooks/s ({source}); RocksDB budget {budget_mb} MB", flush=True)
    with broker_process() as broker:
        install_event_loop("uvloop")  # as the stack's processes and statusflow loadgen
        results = asyncio.run(soak(broker.pid, broker.bootstrap, rate, args.minutes, args.interval))
    results.update(
        date=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        machine=machine(),
        rate_source=source,
        rocksdb_memory_mb=budget_mb,
        elapsed_s=round(time.monotonic() - started, 1),
    )
    results["goals"] = goals(results)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "soak-latest.json").write_bytes(orjson.dumps(results, option=orjson.OPT_INDENT_2))
    write_csv(results.get("rows", []), RESULTS / "soak-latest.csv")
    (RESULTS / "soak-latest.md").write_text(markdown(results), encoding="utf-8")
    plot(results, RESULTS / "soak-latest.png")
    for g in results["goals"]:
        value = _pctf(g["value"]) if isinstance(g["value"], float) else g["value"]
        print(f"  {'MET    ' if g['met'] else 'NOT MET'} {g['name']}: {value} (target {g['target']})")
    print(f"written {RESULTS / 'soak-latest.md'}, .csv, .png in {results['elapsed_s']} s")


if __name__ == "__main__":
    main()
