"""`python -m bench` (`make bench`): every benchmark of issue 7 in one bounded run on a private broker.

Prints a table and writes bench/results/latest.json (machine, date, every figure, goals).
All goals are ratios or bounds measured against baselines in this same run.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import datetime as dt
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Coroutine
from importlib import metadata
from pathlib import Path
from typing import Any

import orjson

from bench import fullstack, pipeline, receiver, state
from bench.generator import Workload, generate, reference
from bench.harness import REPO, RESULTS, Budget, broker
from bench.peer_env import peer_python
from bench.report import goals, markdown, table
from schemas.event_loop import install_event_loop

SCALING_SIZES = (10_000, 100_000, 1_000_000)


def _env_int(name: str, default: int) -> int:
    return int(os.environ.get(name, default))


def _args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--events", type=int, default=_env_int("STATUSFLOW_BENCH_EVENTS", 50_000), help="raw webhooks")
    parser.add_argument(
        "--recovery-messages",
        type=int,
        default=_env_int("STATUSFLOW_BENCH_RECOVERY", 1_000_000),
        help="tracked messages to recover (scaled down to the time budget)",
    )
    parser.add_argument(
        "--budget-s",
        type=float,
        default=float(os.environ.get("STATUSFLOW_BENCH_BUDGET_S", "570")),
        help="seconds for the parts before fullstack; the full-stack part's own time is added to it",
    )
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--profile", action="store_true", help="also run the worker under pyinstrument")
    parser.add_argument(
        "--parts",
        default="pipeline,receiver,state,scaling,fullstack",
        help="comma-separated subset of pipeline,receiver,state,scaling,fullstack (goals of parts not run are not met)",
    )
    return parser.parse_args()


def machine() -> dict[str, Any]:
    """Cores, memory and versions of what is measured."""
    mem_kb = 0
    meminfo = Path("/proc/meminfo")
    if meminfo.exists():
        for line in meminfo.read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem_kb = int(line.split()[1])
    versions: dict[str, str | None] = {}
    for dist in ("faust-streaming", "aiokafka", "aiohttp", "fastavro", "orjson"):
        try:
            versions[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            versions[dist] = None
    return {
        "cores": os.cpu_count(),
        "memory_gb": round(mem_kb / 1024 / 1024, 1),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "versions": versions,
    }


def _say(text: str) -> None:
    print(text, flush=True)


async def _pipeline_part(
    bootstrap: str, workload: Workload, budget: Budget, tmp: Path, *, results: dict[str, Any], profile: bool
) -> None:
    ref = reference(workload)
    records = pipeline.raw_records(workload.webhooks)
    results["workload"] = {
        "webhooks": len(workload.webhooks),
        "status_events": ref.events,
        "messages": len(ref.finals),
        "changes_in_generated_order": ref.changes,
        "repeats": workload.repeats,
        "late_deliveries": workload.late,
        "provider_mix": {k: round(v, 3) for k, v in workload.mix.items()},
        "providers_excluded": workload.excluded,
        "mean_record_bytes": round(sum(len(v) for _, v in records) / len(records), 1),
    }
    _say(f"workload: {results['workload']}")
    raw = await pipeline.run_raw_passthrough(bootstrap, records, events=ref.events)
    _say(f"raw pass-through: {raw.as_dict()}")
    raw_ck = await pipeline.run_confluent_passthrough(bootstrap, records, events=ref.events)
    _say(f"raw confluent-kafka pass-through: {raw_ck.as_dict()}")
    real = await pipeline.run_worker(bootstrap, records, ref, tmp=tmp, within_s=max(60.0, budget.left() * 0.35))
    _say(f"pipeline: {real.as_dict()}")
    naive = await pipeline.run_worker(
        bootstrap,
        records,
        ref,
        name="naive",
        module="bench.naive_faust",
        tmp=tmp,
        within_s=max(60.0, budget.left() * 0.3),
    )
    _say(f"naive faust: {naive.as_dict()}")
    quix = await pipeline.run_worker(
        bootstrap,
        records,
        ref,
        name="quix",
        module="bench.quix_peer",
        python=await asyncio.to_thread(peer_python),
        tmp=tmp,
        within_s=max(60.0, budget.left() * 0.3),
    )
    _say(f"quix streams peer: {quix.as_dict()}")
    results["pipeline"] = {
        "raw": raw.as_dict(),
        "raw_confluent": raw_ck.as_dict(),
        "pipeline": real.as_dict(),
        "naive": naive.as_dict(),
        "quix": quix.as_dict(),
    }
    for label, other in (("raw_confluent", raw_ck), ("quix", quix)):
        if real.webhooks_per_s and other.webhooks_per_s:
            results["pipeline"][f"ratio_pipeline_{label}"] = round(real.webhooks_per_s / other.webhooks_per_s, 3)
    if real.webhooks_per_s and raw.webhooks_per_s:
        results["pipeline"]["ratio_pipeline_raw"] = round(real.webhooks_per_s / raw.webhooks_per_s, 3)
    if real.webhooks_per_s and naive.webhooks_per_s:
        results["pipeline"]["ratio_pipeline_naive"] = round(real.webhooks_per_s / naive.webhooks_per_s, 3)
    if real.complete:
        results["scaling"].append({"workers": 1, **real.as_dict()})
    if profile:
        from bench.profile import summarise  # noqa: PLC0415 - only with --profile (pyinstrument is a dev extra)

        size = min(len(records), 20_000)
        small = generate(size, seed=workload.seed)
        session = RESULTS / "profile-worker.pyisession"
        run = await pipeline.run_worker(
            bootstrap,
            pipeline.raw_records(small.webhooks),
            reference(small),
            name="profiled",
            tmp=tmp,
            profile=session,
            within_s=max(60.0, budget.left() * 0.2),
        )
        if session.exists():
            results["profile"] = {"run": run.as_dict(), **summarise(session, RESULTS / "profile-worker.txt")}
            _say(f"profile: {results['profile']}")
        else:
            results["profile"] = {"run": run.as_dict(), "error": "the profiled worker wrote no session"}


def _recovery_count(requested: int, budget: Budget, reserve_s: float) -> int:
    # Observed on 2 cores: ~30k changelog records/s written, ~9k/s recovered; keep a margin.
    seconds = max(20.0, min(200.0, budget.left() - reserve_s))
    fit = int(seconds / (1 / 30_000 + 1 / 9_000) * 0.8)
    return max(50_000, min(requested, fit // 50_000 * 50_000))


async def _state_part(
    bootstrap: str, workload: Workload, budget: Budget, tmp: Path, *, results: dict[str, Any], requested: int
) -> None:
    ref = reference(workload)
    results["memory"] = state.memory_per_message(ref)
    _say(f"memory: {results['memory']}")
    count = _recovery_count(requested, budget, reserve_s=120)
    results["recovery"] = await state.recovery(bootstrap, ref, count, tmp=tmp, within_s=max(30.0, budget.left() - 90))
    results["recovery"]["requested"] = requested
    _say(f"recovery: {results['recovery']}")


async def _scaling_part(bootstrap: str, seed: int, budget: Budget, tmp: Path, results: dict[str, Any]) -> None:
    points: list[dict[str, Any]] = results["scaling"]
    rate = max((p["webhooks_per_s"] or 0 for p in points), default=0) or 500.0
    done_sizes = {p["webhooks"] for p in points}

    def fits(size: int, workers: int = 1) -> bool:
        # Processing, plus generating the workload in-process (~100 µs per webhook), plus start-up.
        return size / rate + size * 1e-4 + 15 * workers < budget.left() - 15

    for size in SCALING_SIZES:
        if size in done_sizes:
            continue
        if not fits(size):
            _say(f"scaling: {size} events skipped (~{size / rate:.0f}s at {rate:.0f}/s does not fit the budget)")
            results.setdefault("scaling_skipped", []).append(size)
            continue
        workload = generate(size, seed=seed)
        run = await pipeline.run_worker(
            bootstrap,
            pipeline.raw_records(workload.webhooks),
            reference(workload),
            name=f"scale{size}",
            tmp=tmp,
            within_s=budget.left() - 10,
        )
        points.append({"workers": 1, **run.as_dict()})
        _say(f"scaling: 1 worker, {size}: {run.as_dict()}")
    sizes = sorted(p["webhooks"] for p in points)
    two = next((s for s in reversed(sizes) if fits(s, 2)), None)
    if two is None:
        results.setdefault("scaling_skipped", []).append("2 workers")
        return
    workload = generate(two, seed=seed)
    run = await pipeline.run_worker(
        bootstrap,
        pipeline.raw_records(workload.webhooks),
        reference(workload),
        name=f"scale{two}x2",
        workers=2,
        tmp=tmp,
        within_s=budget.left() - 10,
    )
    points.append({"workers": 2, **run.as_dict()})
    _say(f"scaling: 2 workers, {two}: {run.as_dict()}")


async def _receiver_part(bootstrap: str, workload: Workload, results: dict[str, Any]) -> None:
    results["receiver"] = await receiver.run(bootstrap, workload.webhooks)
    _say(f"receiver: {results['receiver']}")


async def _fullstack_part(
    bootstrap: str, budget: Budget, tmp: Path, plan: fullstack.Plan, results: dict[str, Any]
) -> None:
    rate = results.get("pipeline", {}).get("pipeline", {}).get("webhooks_per_s")
    results["fullstack"] = {}  # filled in place: a failure keeps the figures so far
    await fullstack.run(bootstrap, tmp, budget, rate, plan=plan, out=results["fullstack"])


async def _part(name: str, part: Coroutine[Any, Any, None], results: dict[str, Any]) -> None:
    try:
        await part
    except Exception as exc:  # noqa: BLE001 - one broken part must not lose the figures of the others
        results.setdefault("errors", {})[name] = repr(exc)
        _say(f"!! {name} failed: {exc!r}")


async def _run(
    bootstrap: str, args: argparse.Namespace, budget: Budget, plan: fullstack.Plan, results: dict[str, Any]
) -> None:
    tmp = Path(tempfile.mkdtemp(prefix="statusflow-bench-"))
    try:
        started = time.monotonic()
        workload = generate(args.events, seed=args.seed)
        results["generate_s"] = round(time.monotonic() - started, 2)
        results["scaling"] = []
        parts = set(args.parts.split(","))
        if "pipeline" in parts:
            _say("== pipeline throughput")
            part = _pipeline_part(bootstrap, workload, budget, tmp, results=results, profile=args.profile)
            await _part("pipeline", part, results)
        if "receiver" in parts:
            _say("== receiver throughput and latency")
            await _part("receiver", _receiver_part(bootstrap, workload, results), results)
        if "state" in parts:
            _say("== memory and recovery")
            part = _state_part(bootstrap, workload, budget, tmp, results=results, requested=args.recovery_messages)
            await _part("state", part, results)
        if "scaling" in parts:
            _say("== scaling")
            await _part("scaling", _scaling_part(bootstrap, args.seed, budget, tmp, results), results)
        if "fullstack" in parts:
            _say(f"== full stack (steps of {plan.step_s:.0f}s)")
            await _part("fullstack", _fullstack_part(bootstrap, budget, tmp, plan, results), results)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def preflight() -> None:
    """Fail fast when the worker or the receiver cannot even be imported (the code is mid-change)."""
    check = subprocess.run(
        [sys.executable, "-c", "import streams.app, receiver.app"], cwd=REPO, capture_output=True, check=False
    )
    if check.returncode != 0:
        tail = check.stderr.decode(errors="replace").strip().splitlines()[-1:]
        msg = f"the worker or the receiver does not import, nothing to measure: {tail}"
        raise SystemExit(msg)


def main() -> None:
    """Run everything within the budget, print the table, write latest.json."""
    args = _args()
    preflight()
    # The full-stack part runs last with time of its own, held back from the parts before it.
    plan = fullstack.Plan.from_env()
    reserve = fullstack.planned_s(plan) if "fullstack" in args.parts.split(",") else 0.0
    budget = Budget(args.budget_s + reserve, reserved=reserve)
    RESULTS.mkdir(parents=True, exist_ok=True)
    results: dict[str, Any] = {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "command": "make bench",
        "settings": {
            "events": args.events,
            "seed": args.seed,
            "budget_s": args.budget_s,
            "fullstack_budget_s": round(reserve),
            "parts": args.parts,
            "fullstack": dataclasses.asdict(plan),
        },
    }
    started = time.monotonic()
    with broker() as bootstrap:
        results["broker_start_s"] = round(time.monotonic() - started, 2)
        # Every process of the run (ours and the baselines) on the same loop: like for like.
        install_event_loop("uvloop")
        asyncio.run(_run(bootstrap, args, budget, plan, results))
    results["goals"] = goals(results)
    results["elapsed_s"] = round(budget.elapsed(), 1)
    (RESULTS / "latest.json").write_bytes(orjson.dumps(results, option=orjson.OPT_INDENT_2))
    (RESULTS / "latest.md").write_text(markdown(results), encoding="utf-8")
    print(table(results))
    print(f"\nwritten {RESULTS / 'latest.json'} in {results['elapsed_s']}s")


if __name__ == "__main__":
    main()
