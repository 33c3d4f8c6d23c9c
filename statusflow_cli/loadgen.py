"""`statusflow loadgen`: a bounded, paced stream of sample webhooks to a receiver, and its figures.

Webhooks come from the sample generator (`statusflow_cli.samples`): every message follows one
of its provider's lifecycles, so the worker sees realistic statuses. Rate, duration, count and
concurrency have hard caps, and a receiver that is not on loopback needs `--allow-remote`: a
load generator must not be able to flood a production endpoint by a typo.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import ipaddress
import math
import random
import time
from collections.abc import Callable, Iterator
from urllib.parse import urlsplit

from schemas.event_loop import install_event_loop
from statusflow_cli.console import EXIT_USAGE, CliError, Tracker, Unreachable, progress, say
from statusflow_cli.http_load import MAX_RATE, HttpError, Sent, percentiles, probe, send_paced
from statusflow_cli.samples import LIFECYCLES, T0

__all__ = ["MAX_RATE", "percentiles"]  # re-exported: the bench and tests import them from here
MAX_DURATION_S = 600
MAX_COUNT = 1_000_000
MAX_CONCURRENCY = 128
# Seconds a lifecycle's first event time lies before it is sent (its last is at most 100 s on).
LIFECYCLE_LEAD_S = 120


@dataclasses.dataclass(frozen=True, slots=True)
class LoadPlan:
    """What to send, where and how fast."""

    url: str
    rate: float
    count: int
    mix: dict[str, int]
    concurrency: int
    seed: int = 7
    prefix: str = "load-"


def parse_mix(text: str) -> dict[str, int]:
    """`all`, or `meta=3,twilio=1`: providers of the sample generator with positive weights."""
    if text.strip() == "all":
        return dict.fromkeys(LIFECYCLES, 1)
    mix: dict[str, int] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        provider, _, weight = part.partition("=")
        if provider not in LIFECYCLES:
            msg = f"unknown provider {provider!r} in --mix (known: {', '.join(LIFECYCLES)})"
            raise CliError(msg, EXIT_USAGE)
        try:
            mix[provider] = int(weight) if weight else 1
        except ValueError:
            mix[provider] = 0
        if mix[provider] <= 0:
            msg = f"weight of {provider!r} in --mix must be a positive integer, not {weight!r}"
            raise CliError(msg, EXIT_USAGE)
    if not mix:
        msg = "--mix names no provider"
        raise CliError(msg, EXIT_USAGE)
    return mix


def webhook_count(rate: float, duration_s: float, count: int | None) -> int:
    """How many webhooks a run sends: rate x duration, or fewer with --count; within the caps."""
    if not 0 < rate <= MAX_RATE:
        msg = f"--rate must be in (0, {MAX_RATE}] webhooks/s"
        raise CliError(msg, EXIT_USAGE)
    if not 0 < duration_s <= MAX_DURATION_S:
        msg = f"--duration must be in (0, {MAX_DURATION_S}] seconds"
        raise CliError(msg, EXIT_USAGE)
    total = max(1, math.floor(rate * duration_s))
    if count is not None:
        if not 0 < count <= MAX_COUNT:
            msg = f"--count must be in (0, {MAX_COUNT}]"
            raise CliError(msg, EXIT_USAGE)
        total = min(total, count)
    return min(total, MAX_COUNT)


def is_loopback_url(url: str) -> bool:
    """Whether the URL's host is this machine."""
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def generate(
    mix: dict[str, int], seed: int, prefix: str, clock: Callable[[], float] = time.time
) -> Iterator[tuple[str, bytes, str]]:
    """(provider, body, content type) forever: one lifecycle of a provider drawn by weight at a time.

    Event times are of now, as live traffic's are (a lifecycle starts two minutes before it is
    sent, so that none of its times is in the future): samples dated in 2025 would be past
    their retention on a live stack and be retired as soon as they are tracked.
    """
    rng = random.Random(seed)  # noqa: S311 - a reproducible workload, not a secret
    providers, weights = list(mix), list(mix.values())
    n = 0
    while True:
        provider = rng.choices(providers, weights)[0]
        build, lifecycles = LIFECYCLES[provider]
        lifecycle = rng.choice(lifecycles)
        shift = int(clock()) - LIFECYCLE_LEAD_S - T0
        for status, offset, code in lifecycle:
            body, content_type = build(f"{prefix}{provider}-{n}", status, offset + shift, code)
            yield provider, body, content_type
        n += 1


async def run_load(plan: LoadPlan, tracker: Tracker) -> Sent:
    """Send `plan.count` webhooks paced at `plan.rate`, at most `plan.concurrency` in flight."""
    try:
        await probe(plan.url)
    except (HttpError, OSError, TimeoutError) as exc:
        raise Unreachable("receiver", plan.url, exc) from exc
    webhooks = generate(plan.mix, plan.seed, plan.prefix)
    return await send_paced(
        plan.url, webhooks, plan.rate, plan.count, concurrency=plan.concurrency, on_done=tracker.advance
    )


def cmd_loadgen(args: argparse.Namespace) -> int:
    """Run a bounded load against a receiver and print sent, acked, errors and latencies."""
    if not (is_loopback_url(args.url) or args.allow_remote):
        msg = f"{args.url} is not on loopback: pass --allow-remote to load another machine"
        raise CliError(msg, EXIT_USAGE)
    if not 0 < args.concurrency <= MAX_CONCURRENCY:
        msg = f"--concurrency must be in (0, {MAX_CONCURRENCY}]"
        raise CliError(msg, EXIT_USAGE)
    plan = LoadPlan(
        url=args.url,
        rate=args.rate,
        count=webhook_count(args.rate, args.duration, args.count),
        mix=parse_mix(args.mix),
        concurrency=args.concurrency,
        seed=args.seed,
        # New message ids per run by default: a rerun is new load, not a stream of duplicates.
        prefix=args.prefix if args.prefix is not None else f"load-{int(time.time())}-",
    )
    say(f"loadgen: {plan.count} webhooks at {plan.rate:g}/s to {plan.url} ({', '.join(plan.mix)})")
    install_event_loop("uvloop")  # the generator should weigh little on the machine it loads
    with progress("loadgen", plan.count) as tracker:
        result = asyncio.run(run_load(plan, tracker))
    for line in result.summary():
        say(line)
    return 0 if result.acked == result.sent else 1


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """The `loadgen` subcommand."""
    parser = sub.add_parser(
        "loadgen",
        help="send a bounded, paced load of sample webhooks to a receiver",
        description=__doc__.splitlines()[0],
    )
    parser.add_argument("--url", default="http://127.0.0.1:8080", help="the receiver (loopback by default)")
    parser.add_argument("--rate", type=float, default=100, help=f"webhooks per second (100, at most {MAX_RATE})")
    parser.add_argument("--duration", type=float, default=10, help=f"seconds (10, at most {MAX_DURATION_S})")
    parser.add_argument("--count", type=int, default=None, help=f"stop after this many (at most {MAX_COUNT})")
    parser.add_argument("--mix", default="all", help="provider weights, e.g. meta=3,twilio=1 (all: equal)")
    parser.add_argument("--concurrency", type=int, default=32, help=f"in flight (32, at most {MAX_CONCURRENCY})")
    parser.add_argument("--seed", type=int, default=7, help="seed of the workload (7)")
    parser.add_argument("--prefix", default=None, help="message id prefix (load-<epoch seconds>-: new ids per run)")
    parser.add_argument("--allow-remote", action="store_true", help="allow a receiver that is not on loopback")
    parser.set_defaults(func=cmd_loadgen)
