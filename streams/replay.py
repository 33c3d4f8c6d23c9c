"""`python -m streams.replay`: rebuild every derived topic and table from wa.webhooks.raw.

Runs a worker under a new application id, with its derived topics renamed by a suffix, that
reads the raw log from its first offset (e.g. after an adapter fix), and reports progress
until it has caught up with the raw log's end offsets as they were when the replay started.
The live pipeline keeps running untouched; switch consumers to the new topics when satisfied.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from aiokafka import TopicPartition

from schemas.topics import ensure_topics
from streams.positions import LagProbe
from streams.settings import WorkerSettings

REPO = Path(__file__).resolve().parent.parent
# Topics a replay shares with the live pipeline rather than rebuilding: the raw and redrive logs
# it reads, and the notifier's parking topic and dedup ledger, which no worker writes. A notifier
# moved to the replayed alerts topic then keeps its ledger: the replayed alerts carry the same
# deterministic ids, so nobody is told twice.
SHARED = frozenset({"raw", "redrive", "alerts_parked", "alerts_delivered"})


def replay_settings(base: WorkerSettings, app_id: str, suffix: str) -> WorkerSettings:
    """The same worker, with a new app id and every derived topic renamed; the raw log is shared,
    and so is the redrive log (what it names are raw records)."""
    topics = {name: value + suffix for name, value in base.topics.model_dump().items() if name not in SHARED}
    return base.model_copy(update={"app_id": app_id, "topics": base.topics.model_copy(update=topics)})


def replay_env(settings: WorkerSettings) -> dict[str, str]:
    """Environment of a worker process running `settings`."""
    env = {**os.environ, "KAFKA_BOOTSTRAP_SERVERS": settings.bootstrap_servers, "STATUSFLOW_APP_ID": settings.app_id}
    env.update({f"STATUSFLOW_TOPIC_{k.upper()}": v for k, v in settings.topics.model_dump().items()})
    return env


Report = Callable[[int, int], None]


def print_progress(app_id: str) -> Report:
    """A progress line rewritten in place: done/total raw webhooks."""

    def report(done: int, total: int) -> None:
        sys.stdout.write(f"\rreplay {app_id}: {done}/{total} raw webhooks ({done / total:.0%})" if total else "\r")
        sys.stdout.flush()

    return report


async def wait_caught_up(
    settings: WorkerSettings,
    app_id: str,
    proc: subprocess.Popen[bytes],
    timeout_s: float,
    report: Report | None = None,
) -> int:
    """Report progress until the replay has normalized every raw offset that existed at start,
    then wait until its tracking stage has processed the events topic and then the signals
    topic up to their ends when each wait starts (tracking the events writes the signals that
    the channel stage reads). Returns the raw webhooks replayed."""
    probe = LagProbe(settings)
    deadline = time.monotonic() + timeout_s
    normalize = f"{app_id}-normalize"
    done = await _reach_ends(
        probe, normalize, settings.topics.raw, proc=proc, deadline=deadline, report=report or print_progress(app_id)
    )
    # Normalized is not tracked: the table, changes and alerts are only rebuilt once the worker's
    # Faust group has processed every bundle and signal that normalize wrote.
    for topic in (settings.topics.events, settings.topics.signals):
        await _reach_ends(probe, app_id, topic, proc=proc, deadline=deadline)
    sys.stdout.write("\n")
    return done


async def _reach_ends(
    probe: LagProbe,
    group: str,
    topic: str,
    *,
    proc: subprocess.Popen[bytes],
    deadline: float,
    report: Report | None = None,
) -> int:
    """Until `group` has committed every partition of `topic` up to the end it had at the first
    measurement ("the end" is a snapshot: the channels' ticks keep adding signals); returns the
    records committed of that snapshot."""
    targets: dict[TopicPartition, int] | None = None
    while True:
        if proc.poll() is not None:
            msg = f"replay worker exited with {proc.returncode}"
            raise SystemExit(msg)
        measured = (await probe.measure_partitions()).get(group, {})
        offsets = {tp: where for tp, where in measured.items() if tp.topic == topic}
        if targets is None and offsets:
            targets = {tp: where.end for tp, where in offsets.items()}
        done = sum(min(offsets[tp].committed or 0, end) for tp, end in (targets or {}).items() if tp in offsets)
        total = sum((targets or {}).values())
        if report is not None:
            report(done, total)
        if targets is not None and all(tp in offsets and offsets[tp].position >= end for tp, end in targets.items()):
            return done
        if time.monotonic() > deadline:
            msg = f"replay did not catch up with {topic} in time ({done}/{total} committed by {group})"
            raise SystemExit(msg)
        await asyncio.sleep(1.0)  # progress poll interval


def _terminate(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The replay's arguments (shared with `statusflow replay`)."""
    parser.add_argument("--app-id", required=True, help="new application id (consumer groups, changelogs)")
    parser.add_argument("--suffix", default=None, help="appended to derived topic names (default .<app-id>)")
    parser.add_argument("--timeout", type=float, default=3600, help="seconds to wait for catching up")
    parser.add_argument("--follow", action="store_true", help="keep the replay worker running afterwards")
    parser.add_argument("--web-port", type=int, default=6067, help="the replay worker's web port (6067)")
    parser.add_argument(
        "--worker-log", type=Path, default=None, help="append the replay worker's log to this file (default: stdout)"
    )


def main(argv: list[str] | None = None) -> int:
    """`python -m streams.replay`."""
    parser = argparse.ArgumentParser(prog="statusflow-replay", description=__doc__.splitlines()[0])
    add_arguments(parser)
    return run(parser.parse_args(argv))


def run(args: argparse.Namespace, report: Report | None = None) -> int:
    """Start the replay worker, report progress; keep it running with --follow."""
    settings = replay_settings(WorkerSettings(), args.app_id, args.suffix or f".{args.app_id}")
    asyncio.run(ensure_topics(settings))
    # SIGTERM must unwind like Ctrl-C, so that the finally below stops the replay worker.
    signal.signal(signal.SIGTERM, _terminate)
    env = {**replay_env(settings), "STATUSFLOW_WEB_PORT": str(args.web_port)}
    log = args.worker_log.open("ab") if args.worker_log is not None else None
    proc = subprocess.Popen([sys.executable, "-m", "streams"], cwd=REPO, env=env, stdout=log, stderr=log)
    try:
        done = asyncio.run(wait_caught_up(settings, args.app_id, proc, args.timeout, report))
        derived = ", ".join(v for k, v in settings.topics.model_dump().items() if k not in SHARED)
        sys.stdout.write(f"replayed {done} webhooks into {derived}; worker on port {args.web_port}\n")
        sys.stdout.flush()
        if args.follow:
            proc.wait()
    except KeyboardInterrupt:
        pass
    finally:
        if proc.poll() is None:
            proc.terminate()
            proc.wait(timeout=60)
        if log is not None:
            log.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
