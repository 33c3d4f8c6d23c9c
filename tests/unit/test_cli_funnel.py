"""`statusflow funnel`: arguments, the query it sends, the table it prints, the worker's errors."""

from __future__ import annotations

import asyncio
import re
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import orjson
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from hypothesis import given, settings
from hypothesis import strategies as st
from yarl import URL

from devkit.kafka_local import free_port
from statusflow_cli import funnel as cli_funnel
from statusflow_cli.console import EXIT_FAILED, EXIT_UNREACHABLE, EXIT_USAGE, CliError, Unreachable
from statusflow_cli.funnel import fetch, percent, query_url, rates_of, render, worker_base
from statusflow_cli.main import build_parser, main
from streams.domain.funnel import Cohort, CohortRow, funnel_view

HOUR = 3_600_000
T0 = 1_750_028_400_000  # 2025-06-15 23:00 UTC, on the hour


def campaign_rows() -> list[CohortRow]:
    """Issue 15's campaign (10 attempted, 8 delivered of which 2 implied, 6 read, 2 failed) and a
    later cohort still pending."""
    first = Counter(
        {"attempted": 10, "delivered": 8, "delivered_implied": 2, "read": 6, "failed": 2}
        | {"reason:not_found": 2, "code:131026": 2}
    )
    later = Counter({"attempted": 3, "delivered": 1, "sent": 2})
    return [
        CohortRow(Cohort("aivo", "default", "camp", T0), first, revision=7),
        CohortRow(Cohort("aivo", "default", "camp", T0 + HOUR), later, revision=1),
    ]


def test_arguments_parse_times_as_the_worker_reads_them() -> None:
    args = build_parser().parse_args(
        [
            "funnel",
            "aivo",
            "default",
            "--campaign",
            "camp",
            "--since",
            "2025-06-15T23:00:00Z",
            "--until",
            "1750100000000",
        ]
    )
    assert (args.provider, args.channel, args.campaign) == ("aivo", "default", "camp")
    assert (args.since, args.until) == (T0, 1_750_100_000_000)
    assert args.worker_url == "http://127.0.0.1:6066" and not args.json
    # No offset means UTC, as on the worker.
    assert build_parser().parse_args(["funnel", "a", "b", "--since", "2025-06-15T23:00"]).since == T0


def test_a_time_that_is_not_one_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        build_parser().parse_args(["funnel", "aivo", "default", "--since", "yesterday"])
    assert exit_info.value.code == EXIT_USAGE
    assert "--since" in capsys.readouterr().err


def test_the_query_names_the_channel_and_sends_times_as_epoch_ms() -> None:
    base = worker_base("http://worker:6066")
    url = query_url(base, "aivo", "default", campaign="hot sale&co", since=T0, until=T0 + HOUR)
    assert url.path == "/funnel/aivo/default"
    assert dict(url.query) == {"campaign": "hot sale&co", "since": str(T0), "until": str(T0 + HOUR)}
    assert query_url(base, "meta", "main", campaign=None, since=None, until=None).query_string == ""
    # Behind a proxy path, the funnel is under it.
    behind = query_url(
        worker_base("https://ops.example/statusflow/"), "meta", "main", campaign=None, since=1, until=None
    )
    assert str(behind) == "https://ops.example/statusflow/funnel/meta/main?since=1"


@pytest.mark.parametrize("text", ["ftp://worker", "worker:6066", "http://"])
def test_a_worker_url_that_is_not_http_is_a_usage_error(text: str) -> None:
    with pytest.raises(CliError) as error:
        worker_base(text)
    assert error.value.exit_code == EXIT_USAGE


def test_an_empty_period_is_a_usage_error() -> None:
    with pytest.raises(CliError) as error:
        query_url(worker_base("http://w:1"), "a", "b", campaign=None, since=T0, until=T0)
    assert error.value.exit_code == EXIT_USAGE


def test_the_table_shows_each_cohort_and_the_total_with_the_rates() -> None:
    view = funnel_view("aivo", "default", campaign_rows(), HOUR, campaign="camp")
    lines = render(view)
    assert (
        lines[0] == "funnel of aivo:default campaign camp: cohorts of 1 h by first event time, every cohort held (UTC)"
    )
    header, first, later, total = lines[1:5]
    assert header.split() == [
        *("cohort", "attempted", "delivered", "read", "failed", "expired", "pending"),
        *("delivery%", "read%", "failure%"),
    ]
    assert first.split() == ["2025-06-15", "23:00", "10", "8", "6", "2", "0", "0", "80.0%", "75.0%", "20.0%"]
    assert later.split() == ["2025-06-16", "00:00", "3", "1", "0", "0", "0", "2", "33.3%", "0.0%", "0.0%"]
    assert total.split() == ["total", "13", "9", "6", "2", "0", "2", "69.2%", "66.7%", "15.4%"]
    assert "2 implied by a read" in lines[5]
    assert lines[6] == "failed by reason: not_found 2; by code: 131026 2"
    # Columns line up under their headers.
    assert {len(line) for line in (header, first, later, total)} == {len(header)}


def test_a_selection_and_an_empty_answer_say_so() -> None:
    view = funnel_view("meta", "nope", [], HOUR, since=T0, until=T0 + HOUR)
    lines = render(view)
    assert "cohorts starting from 2025-06-15 23:00 before 2025-06-16 00:00" in lines[0]
    assert lines[1].startswith("no cohorts: nothing attempted")
    assert len(lines) == 2


def test_rates_without_a_denominator_show_a_dash() -> None:
    view = funnel_view(
        "wpp", "main", [CohortRow(Cohort("wpp", "main", None, T0), Counter(attempted=2, queued=2))], HOUR
    )
    total = render(view)[-1].split()
    assert total == ["total", "2", "0", "0", "0", "0", "2", "0.0%", "-", "0.0%"]
    assert percent(None) == "-"


def test_an_answer_without_rates_gets_them_from_its_counts() -> None:
    assert rates_of({"attempted": 4, "delivered": 3, "read": 3, "failed": 1}) == {
        "delivery_rate": 0.75,
        "read_rate": 1.0,
        "failure_rate": 0.25,
    }
    assert rates_of({"attempted": 0}) == dict.fromkeys(("delivery_rate", "read_rate", "failure_rate"))
    # The worker's own rates win when present.
    assert rates_of({"attempted": 4, "delivered": 3, "delivery_rate": None})["delivery_rate"] is None


@st.composite
def cohort_counts(draw: st.DrawFn) -> Counter[str]:
    """One cohort's counts as the worker keeps them: every attempted message in one outcome."""
    delivered, failed, expired = (draw(st.integers(0, 50)) for _ in range(3))
    pending = {stage: draw(st.integers(0, 20)) for stage in ("queued", "created", "sent")}
    counts = Counter(
        {
            "attempted": delivered + failed + expired + sum(pending.values()),
            "delivered": delivered,
            "delivered_implied": draw(st.integers(0, delivered)),
            "read": draw(st.integers(0, delivered)),
            "failed": failed,
            "expired": expired,
            **pending,
        }
    )
    return +counts


@settings(max_examples=200, deadline=None)
@given(st.lists(cohort_counts(), max_size=6))
def test_no_rate_printed_exceeds_100_percent_and_the_total_is_the_ratio_of_sums(cohorts: list[Counter[str]]) -> None:
    rows = [CohortRow(Cohort("meta", "main", None, T0 + i * HOUR), counts) for i, counts in enumerate(cohorts)]
    view = funnel_view("meta", "main", rows, HOUR)
    shown = [float(p) for line in render(view) for p in re.findall(r"(\d+(?:\.\d+)?)%", line)]
    assert all(0.0 <= p <= 100.0 for p in shown)
    assert all(r is None or 0.0 <= r <= 1.0 for record in (view, *view["cohorts"]) for r in rates_of(record).values())
    attempted = sum(c["attempted"] for c in cohorts)
    delivered = sum(c["delivered"] for c in cohorts)
    expected = delivered / attempted if attempted else None
    assert rates_of(view)["delivery_rate"] == (pytest.approx(expected) if expected is not None else None)


# A stand-in worker: each test sets what GET /funnel answers.
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@pytest.fixture
async def stub_worker() -> AsyncIterator[tuple[URL, list[Handler], list[web.Request]]]:
    handlers: list[Handler] = []
    seen: list[web.Request] = []

    async def route(request: web.Request) -> web.StreamResponse:
        seen.append(request)
        return await handlers[-1](request)

    app = web.Application()
    app.router.add_get("/funnel/{provider}/{channel}", route)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    try:
        yield URL(str(server.make_url("/"))), handlers, seen
    finally:
        await server.close()


async def test_fetch_returns_the_workers_answer(stub_worker: tuple[URL, list[Handler], list[web.Request]]) -> None:
    base, handlers, seen = stub_worker
    view = funnel_view("aivo", "default", campaign_rows(), HOUR, campaign="camp")

    async def ok(request: web.Request) -> web.StreamResponse:
        return web.json_response(view)

    handlers.append(ok)
    url = query_url(base, "aivo", "default", campaign="camp", since=T0, until=None)
    assert await fetch(url, base, 5) == orjson.loads(orjson.dumps(view))
    assert seen[0].path == "/funnel/aivo/default"
    assert dict(seen[0].query) == {"campaign": "camp", "since": str(T0)}


@pytest.mark.parametrize(
    ("status", "body", "exit_code", "says"),
    [
        (
            400,
            b'{"error": "since/until: epoch ms or ISO 8601"}',
            EXIT_USAGE,
            "the worker refused the query: since/until",
        ),
        (503, b'{"error": "the worker that owns this key did not answer; retry shortly"}', EXIT_UNREACHABLE, "retry"),
        (404, b"404: Not Found", EXIT_FAILED, "a statusflow worker with GET /funnel"),
        (500, b"boom", EXIT_FAILED, "500 boom"),
        (200, b"<html>not json</html>", EXIT_FAILED, "not JSON"),
        (200, b'{"status": "ok"}', EXIT_FAILED, "not a funnel"),
    ],
)
async def test_fetch_turns_each_failure_into_one_line_and_its_exit_code(
    stub_worker: tuple[URL, list[Handler], list[web.Request]], status: int, body: bytes, exit_code: int, says: str
) -> None:
    base, handlers, _ = stub_worker

    async def answer(request: web.Request) -> web.StreamResponse:
        return web.Response(status=status, body=body, content_type="application/json")

    handlers.append(answer)
    with pytest.raises(CliError) as error:
        await fetch(query_url(base, "aivo", "default", campaign=None, since=None, until=None), base, 5)
    assert error.value.exit_code == exit_code
    assert says in str(error.value) and "\n" not in str(error.value)


async def test_a_worker_that_does_not_answer_in_time_is_unreachable(
    stub_worker: tuple[URL, list[Handler], list[web.Request]],
) -> None:
    base, handlers, _ = stub_worker

    async def slow(request: web.Request) -> web.StreamResponse:
        await asyncio.sleep(5)
        return web.json_response({})

    handlers.append(slow)
    with pytest.raises(Unreachable) as error:
        await fetch(query_url(base, "aivo", "default", campaign=None, since=None, until=None), base, 0.2)
    assert error.value.exit_code == EXIT_UNREACHABLE
    assert str(error.value) == f"cannot reach the worker at {base} (no answer within 0.2 s)"


def test_no_worker_is_one_line_on_stderr_and_exit_code_3(capsys: pytest.CaptureFixture[str]) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    assert main(["funnel", "aivo", "default", "--worker-url", url]) == EXIT_UNREACHABLE
    out, err = capsys.readouterr()
    assert out == ""
    assert err.startswith(f"statusflow: cannot reach the worker at {url}") and err.count("\n") == 1


def test_the_command_prints_the_table_or_the_json(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    view = orjson.loads(orjson.dumps(funnel_view("aivo", "default", campaign_rows(), HOUR, campaign="camp")))
    asked: list[URL] = []

    async def answer(url: URL, base: URL, timeout_s: float, token: str | None = None) -> dict[str, Any]:
        asked.append(url)
        return dict(view)

    monkeypatch.setattr(cli_funnel, "fetch", answer)
    argv = ["funnel", "aivo", "default", "--campaign", "camp", "--worker-url", "http://w:7000"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert out.splitlines() == render(view)
    assert main([*argv, "--json"]) == 0
    assert orjson.loads(capsys.readouterr().out) == view
    assert str(asked[0]) == "http://w:7000/funnel/aivo/default?campaign=camp"


async def test_fetch_sends_the_api_token_and_says_when_one_is_needed(
    stub_worker: tuple[URL, list[Handler], list[web.Request]],
) -> None:
    base, handlers, seen = stub_worker
    token = "acme-token-0123456789abcdef"

    async def tenants_only(request: web.Request) -> web.StreamResponse:
        if request.headers.get("Authorization") != f"Bearer {token}":
            return web.json_response({"error": "a bearer token is needed"}, status=401)
        return web.json_response(funnel_view("aivo", "default", campaign_rows(), HOUR))

    handlers.append(tenants_only)
    url = query_url(base, "aivo", "default", campaign=None, since=None, until=None)
    assert (await fetch(url, base, 5, token))["attempted"] >= 0
    for sent, says in ((None, "set STATUSFLOW_API_TOKEN"), ("wrong-token-0123456789", "a token was refused")):
        with pytest.raises(CliError) as error:
            await fetch(url, base, 5, sent)
        assert error.value.exit_code == EXIT_USAGE
        assert says in str(error.value) and token not in str(error.value)
    assert seen[0].headers["Authorization"] == f"Bearer {token}"
