"""`statusflow funnel`: a channel's (or one campaign's) send-cohort funnel, asked of a worker.

The worker's `GET /funnel/{provider}/{channel}?campaign=&since=&until=` answers (any worker:
the one that owns the channel's cohorts answers, the others forward). This prints its cohorts
and their sum as a table, or the answer itself with `--json`. The rates are the worker's
cohort rates: delivered / attempted, read / delivered, failed / attempted, which cannot leave
[0, 1] (README, "Send-cohort funnel").
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
from collections.abc import Mapping
from typing import Any

import aiohttp
import orjson
from yarl import URL

from statusflow_cli.console import EXIT_UNREACHABLE, EXIT_USAGE, CliError, Unreachable, say
from streams.domain.funnel import parse_instant, rate

DEFAULT_WORKER_URL = "http://127.0.0.1:6066"
#: A tenant's or the operator's API token, for a deployment with tenants (docs/runbook.md).
API_TOKEN_ENV = "STATUSFLOW_API_TOKEN"  # noqa: S105 - a variable's name, not a secret

# What a row shows: every message of a cohort counts in attempted, then in one outcome or pending.
COUNTS = ("attempted", "delivered", "read", "failed", "expired", "pending")
# Each rate and the counts it divides (the worker's definitions, used when an answer lacks one).
RATES: dict[str, tuple[str, str]] = {
    "delivery_rate": ("delivered", "attempted"),
    "read_rate": ("read", "delivered"),
    "failure_rate": ("failed", "attempted"),
}
_HEADERS = {
    "attempted": "attempted",
    "delivered": "delivered",
    "read": "read",
    "failed": "failed",
    "expired": "expired",
    "pending": "pending",
    "delivery_rate": "delivery%",
    "read_rate": "read%",
    "failure_rate": "failure%",
}
_RATE = 9  # width of a rate column
_LABEL = 18  # width of the cohort column ("2025-06-15 14:00" and "total")


def instant(text: str) -> int:
    """An argparse type: epoch ms or ISO 8601 (UTC without an offset), as the worker reads them."""
    try:
        return parse_instant(text)
    except ValueError as exc:
        msg = f"{text!r} is neither epoch milliseconds nor ISO 8601 ({exc})"
        raise argparse.ArgumentTypeError(msg) from exc


def worker_base(text: str) -> URL:
    """The worker's base URL, refused with exit code 2 unless it is http(s)://host[:port][/path]."""
    try:
        url = URL(text)
    except (ValueError, TypeError) as exc:
        msg = f"--worker-url {text!r}: not a URL ({exc})"
        raise CliError(msg, EXIT_USAGE) from exc
    if url.scheme not in ("http", "https") or not url.host:
        msg = f"--worker-url {text!r}: expected http://host:port (the worker's web server)"
        raise CliError(msg, EXIT_USAGE)
    return url


def query_url(
    base: URL, provider: str, channel: str, *, campaign: str | None, since: int | None, until: int | None
) -> URL:
    """GET /funnel/{provider}/{channel} under the worker's base URL, times as epoch ms."""
    if since is not None and until is not None and since >= until:
        msg = "--since must be before --until (cohorts whose start is in [since, until) are selected)"
        raise CliError(msg, EXIT_USAGE)
    query = {
        name: str(value)
        for name, value in (("campaign", campaign), ("since", since), ("until", until))
        if value not in (None, "")
    }
    return (base / "funnel" / provider / channel).with_query(query)


def _error_of(body: bytes) -> str:
    """The `error` a worker's JSON answer gives, else the start of the body."""
    try:
        parsed = orjson.loads(body)
    except orjson.JSONDecodeError:
        parsed = None
    error = parsed.get("error") if isinstance(parsed, dict) else None
    if isinstance(error, str):
        return error
    return body[:200].decode("utf-8", "replace").strip() or "no body"


async def fetch(url: URL, base: URL, timeout_s: float, token: str | None = None) -> dict[str, Any]:
    """The worker's answer, or a CliError whose exit code says whose fault it is; `token` goes as
    `Authorization: Bearer` (a deployment with tenants)."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        async with (
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout_s)) as http,
            http.get(url, headers=headers) as response,
        ):
            status, body = response.status, await response.read()
    except TimeoutError as exc:  # aiohttp's ServerTimeoutError too
        raise Unreachable("worker", str(base), str(exc) or f"no answer within {timeout_s:g} s") from exc
    except aiohttp.ClientConnectionError as exc:
        raise Unreachable("worker", str(base), exc) from exc
    except aiohttp.ClientError as exc:
        msg = f"{url}: {exc}"
        raise CliError(msg) from exc
    if status == 400:
        msg = f"the worker refused the query: {_error_of(body)}"
        raise CliError(msg, EXIT_USAGE)
    if status == 401:
        given = "was refused" if token else f"is needed: set {API_TOKEN_ENV}"
        msg = f"the worker at {base} answers tenants' API tokens only; a token {given}"
        raise CliError(msg, EXIT_USAGE)
    if status == 503:
        # The worker that owns the channel's cohorts died and the group has not moved them yet.
        msg = f"the worker at {base} cannot answer yet: {_error_of(body)}"
        raise CliError(msg, EXIT_UNREACHABLE)
    if status == 404:
        msg = f"{url}: 404 ({_error_of(body)}): is {base} a statusflow worker with GET /funnel?"
        raise CliError(msg)
    if status != 200:
        msg = f"{url}: {status} {_error_of(body)}"
        raise CliError(msg)
    try:
        view = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        msg = f"{url}: the answer is not JSON ({exc})"
        raise CliError(msg) from exc
    if not isinstance(view, dict) or "attempted" not in view:
        msg = f"{url}: the answer is not a funnel"
        raise CliError(msg)
    return view


def rates_of(record: Mapping[str, Any]) -> dict[str, float | None]:
    """The three rates of a funnel answer or cohort record: the worker's, or (from an answer
    that lacks one) computed from its counts the way the worker does."""
    out: dict[str, float | None] = {}
    for name, (numerator, denominator) in RATES.items():
        if name in record:
            value = record[name]
            out[name] = None if value is None else float(value)
        else:
            out[name] = rate(int(record.get(numerator) or 0), int(record.get(denominator) or 0))
    return out


def percent(value: float | None) -> str:
    """A rate as a percentage with one decimal; `-` when it has no denominator."""
    return "-" if value is None else f"{value:.1%}"


def when(millis: int) -> str:
    """A cohort start in UTC, to the minute (to the second when it is not on a minute)."""
    at = dt.datetime.fromtimestamp(millis / 1000, tz=dt.UTC)
    return at.strftime("%Y-%m-%d %H:%M:%S" if millis % 60_000 else "%Y-%m-%d %H:%M")


def duration(millis: int) -> str:
    """A cohort length for people: 1 h, 30 min, 45 s."""
    for unit, size in (("d", 86_400_000), ("h", 3_600_000), ("min", 60_000), ("s", 1000)):
        if millis >= size and millis % size == 0:
            return f"{millis // size} {unit}"
    return f"{millis} ms"


def _row(label: str, record: Mapping[str, Any]) -> str:
    counts = " ".join(f"{int(record.get(name) or 0):>{len(_HEADERS[name])}}" for name in COUNTS)
    rates = " ".join(f"{percent(v):>{_RATE}}" for v in rates_of(record).values())
    return f"{label:<{_LABEL}} {counts} {rates}"


def _selection(view: Mapping[str, Any]) -> str:
    since, until = view.get("since"), view.get("until")
    if since is None and until is None:
        return "every cohort held"
    parts = [f"from {when(since)}" if since is not None else "", f"before {when(until)}" if until is not None else ""]
    return "cohorts starting " + " ".join(p for p in parts if p)


def _breakdown(counts: Mapping[str, Any]) -> str:
    return ", ".join(f"{name} {count}" for name, count in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))


def render(view: Mapping[str, Any]) -> list[str]:
    """The answer of GET /funnel as lines: a title, one row per cohort, the total, the failures."""
    scope = f"{view['provider']}:{view['channel']}"
    if view.get("campaign"):
        scope += f" campaign {view['campaign']}"
    cohort_ms = int(view.get("cohort_ms") or 0)
    length = f"cohorts of {duration(cohort_ms)} by first event time" if cohort_ms else "send cohorts"
    lines = [f"funnel of {scope}: {length}, {_selection(view)} (UTC)"]
    cohorts = list(view.get("cohorts") or [])
    if not cohorts and not view.get("attempted"):
        lines.append("no cohorts: nothing attempted here in this period (check the provider, channel and campaign)")
        return lines
    header = " ".join(f"{_HEADERS[name]:>{len(_HEADERS[name])}}" for name in COUNTS)
    rates = " ".join(f"{_HEADERS[name]:>{_RATE}}" for name in RATES)
    lines.append(f"{'cohort':<{_LABEL}} {header} {rates}")
    lines += [_row(when(int(cohort["cohort_start"])), cohort) for cohort in cohorts]
    lines.append(_row("total", view))
    if view.get("delivered_implied"):
        lines.append(f"delivered includes {view['delivered_implied']} implied by a read without a delivery report")
    if view.get("failed"):
        failures = f"failed by reason: {_breakdown(view.get('failures_by_reason') or {}) or 'unknown'}"
        codes = view.get("failures_by_code") or {}
        lines.append(failures + (f"; by code: {_breakdown(codes)}" if codes else ""))
    return lines


def cmd_funnel(args: argparse.Namespace) -> int:
    """Ask a worker for the funnel and print it."""
    base = worker_base(args.worker_url)
    url = query_url(base, args.provider, args.channel, campaign=args.campaign, since=args.since, until=args.until)
    view = asyncio.run(fetch(url, base, args.timeout, os.environ.get(API_TOKEN_ENV) or None))
    if args.json:
        say(orjson.dumps(view).decode())
        return 0
    for line in render(view):
        say(line)
    return 0


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """The `funnel` subcommand."""
    parser = sub.add_parser(
        "funnel",
        help="a channel's or campaign's send-cohort funnel and rates, from a worker",
        description="Ask a worker (GET /funnel/PROVIDER/CHANNEL; any worker answers) for the send-cohort "
        "funnel: per cohort of first event time and in total, attempted, delivered (including implied by "
        "a read), read, failed, expired and pending messages, and the rates delivered / attempted, "
        "read / delivered, failed / attempted. With tenants configured, STATUSFLOW_API_TOKEN holds the "
        "tenant's (or the operator's) API token.",
    )
    parser.add_argument("provider", help="the provider, as in the webhook URL (meta, aivo, gupshup, ...)")
    parser.add_argument("channel", help="the channel name (`default` for webhooks posted to /webhooks/PROVIDER)")
    parser.add_argument("--campaign", help="only this campaign's cohorts (default: the whole channel)")
    parser.add_argument(
        "--since", type=instant, help="cohorts starting at or after this time (epoch ms or ISO 8601, UTC by default)"
    )
    parser.add_argument("--until", type=instant, help="cohorts starting before this time (epoch ms or ISO 8601)")
    parser.add_argument("--json", action="store_true", help="print the worker's JSON answer as one line")
    parser.add_argument(
        "--worker-url", default=DEFAULT_WORKER_URL, help=f"any worker's web server ({DEFAULT_WORKER_URL})"
    )
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds to wait for the answer (10)")
    parser.set_defaults(func=cmd_funnel)
