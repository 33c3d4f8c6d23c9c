"""The dashboard page in headless Chromium against the real stack fed with the demo's webhooks.

Receiver (real Kafka producer), a worker process and the dashboard process run on this test's
topics; the sample webhooks of every provider are posted to the receiver, plus two that cannot
be normalised. The numbers the page shows must be the ones the topics hold (read here
independently), and screenshots are saved: under the test's directory, and under
$STATUSFLOW_SCREENSHOT_DIR when set (`make screenshot` sets it to docs/).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiokafka import AIOKafkaConsumer
from playwright.async_api import Page, async_playwright

from devkit.kafka_local import free_port
from schemas.codec import codec
from schemas.settings import KafkaSettings
from statusflow_cli.samples import mixed_stream
from streams.domain.funnel import funnel_of as cohort_funnel_of
from streams.domain.funnel import summary
from streams.domain.lattice import MessageState
from streams.domain.metrics import Scope, contributions
from tests.integration.conftest import REPO, WorkerFactory
from tests.integration.helpers import consume, wait_until

CHROMIUM = os.environ.get("STATUSFLOW_CHROMIUM", "/usr/bin/chromium")
STATUSES = ("queued", "created", "sent", "failed", "delivered", "read")
# What a send-cohort row of the page shows, in its column order (dashboard/static/app.js).
COHORT = ("attempted", "delivered", "read", "failed", "pending", "expired")
HOUR = 3_600_000
# The samples carry event times of June 2025 while Twilio's are stamped at receipt (now): by the
# stream's own time every sample would be past retention at once. Retention is not under test.
NO_RETENTION = {"STATUSFLOW_RETENTION_FINISHED_S": "315360000", "STATUSFLOW_RETENTION_UNFINISHED_S": "315360000"}
# Bodies the receiver accepts (valid JSON) that no adapter can normalise: dead letters.
UNPARSEABLE = [("meta", b'{"object": "whatsapp_business_account", "entry": "oops"}'), ("generic", b'{"id": "x"}')]


@pytest.fixture
async def dashboard_url(
    kafka_settings: KafkaSettings, unique_id: str, receiver_url: str, tmp_path: Path, request: pytest.FixtureRequest
) -> AsyncIterator[str]:
    """`python -m dashboard` on this test's topics, watching this test's worker and receiver."""
    port = free_port()
    env = {
        **os.environ,
        "KAFKA_BOOTSTRAP_SERVERS": kafka_settings.bootstrap_servers,
        "STATUSFLOW_APP_ID": f"statusflow-{unique_id}",
        "STATUSFLOW_DASHBOARD_PORT": str(port),
        "STATUSFLOW_DASHBOARD_REFRESH_S": "1",
        "STATUSFLOW_DASHBOARD_RECEIVER_METRICS": f"{receiver_url}/metrics",
        **{f"STATUSFLOW_TOPIC_{k.upper()}": v for k, v in kafka_settings.topics.model_dump().items()},
    }
    log = tmp_path / "dashboard.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(  # noqa: ASYNC220 - a long-lived child like the workers; Popen returns at once
            [sys.executable, "-m", "dashboard"], cwd=REPO, env=env, stdout=out, stderr=out
        )
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        report = getattr(request.node, "report_call", None)
        if report is not None and report.failed:
            tail = "\n".join(log.read_text(errors="replace").splitlines()[-40:])
            print(f"\n----- dashboard.log (last 40 lines) -----\n{tail}")  # noqa: T201 - shown by pytest on failure


async def read_topic(bootstrap: str, topic: str, schema: str) -> list[dict[str, Any]]:
    """Every record of `topic` up to its current end, decoded."""
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest", group_id=None)
    await consumer.start()
    try:
        while not consumer.assignment():
            await consumer.getmany(timeout_ms=100)
        ends = await consumer.end_offsets(list(consumer.assignment()))
        await consumer.seek_to_beginning()
        records: list[dict[str, Any]] = []

        async def behind() -> bool:
            return any([await consumer.position(tp) < end for tp, end in ends.items()])

        while await behind():
            for batch in (await consumer.getmany(timeout_ms=500)).values():
                records += [codec(schema).decode(r.value) for r in batch if r.value is not None]
        return records
    finally:
        await consumer.stop()


def funnel_of(windows: list[dict[str, Any]]) -> dict[str, dict[str, int]]:
    """Per scope key, messages per status over the latest revision of every window."""
    latest: dict[str, dict[str, Any]] = {}
    for w in windows:
        if w["metric_id"] not in latest or latest[w["metric_id"]]["revision"] < w["revision"]:
            latest[w["metric_id"]] = w
    out: dict[str, dict[str, int]] = {}
    for w in latest.values():
        key = f"{w['provider']}:{w['channel']}" + (f"#{w['campaign']}" if w["campaign"] else "")
        row = out.setdefault(key, dict.fromkeys(STATUSES, 0))
        for status in STATUSES:
            row[status] += w["transitions"].get(status, 0)
    return out


def cohorts_of(records: list[dict[str, Any]]) -> dict[str, dict[str, int]]:
    """Per scope key, the send-cohort counts summed over the last record of every cohort (wa.funnel)."""
    latest: dict[str, dict[str, Any]] = {}
    for r in records:
        key = f"{r['provider']}:{r['channel']}#{r['campaign']}@{r['cohort_start']}"
        if key not in latest or latest[key]["revision"] < r["revision"]:
            latest[key] = r
    out: dict[str, dict[str, int]] = {}
    for r in latest.values():
        row = out.setdefault(Scope(r["provider"], r["channel"], r["campaign"]).key, dict.fromkeys(COHORT, 0))
        for name in COHORT:
            row[name] += r[name]
    return out


async def page_numbers(page: Page) -> dict[str, Any]:
    """What the page shows, read from its DOM."""
    result: dict[str, Any] = await page.evaluate(
        """() => {
        const funnel = (id) => Object.fromEntries([...document.querySelectorAll(`#${id} tr[data-scope]`)]
            .filter((tr) => tr.dataset.scope !== "all")
            .map((tr) => [tr.dataset.scope, Object.fromEntries([...tr.querySelectorAll("td[data-status]")]
                .map((td) => [td.dataset.status, Number(td.dataset.value)]))]));
        const kpi = (k) => document.querySelector(`[data-kpi="${k}"]`);
        const RATES = ["delivery_rate", "read_rate", "failure_rate"];
        return {
            channels: funnel("funnel-channels"),
            campaigns: funnel("funnel-campaigns"),
            dead_letters: Number(kpi("dead_letters").dataset.value),
            lag: Object.fromEntries([...document.querySelectorAll("#lag tr[data-topic]")]
                .map((tr) => [tr.dataset.topic, Number(tr.dataset.value)])),
            requests: Number(kpi("requests_rate").dataset.total),
            alerts_seen: Number(document.getElementById("alerts-summary").dataset.seen),
            firing: [...document.querySelectorAll("[data-firing]")].map((el) => el.dataset.firing),
            lag_groups: [...document.querySelectorAll("#lag tr[data-group]")].map((tr) => tr.dataset.group),
            latency: [...document.querySelectorAll("#latency tr[data-scope]")].map((tr) => tr.dataset.scope),
            rate_lines: document.querySelectorAll("#chart-rates polyline").length,
            rates: [...document.querySelectorAll("[data-rate]"), ...RATES.map(kpi)]
                .map((el) => el.dataset.value).filter((v) => v !== "").map(Number),
            percents: [...document.body.innerText.matchAll(/(-?[0-9][0-9.,]*) *%/g)]
                .map((m) => Number(m[1].replace(/,/g, ""))),
            cells_text: [...document.querySelectorAll("#funnel-channels td[data-status]")].map((td) => td.textContent),
        };
    }"""
    )
    return result


@pytest.fixture
def chromium() -> str:
    """Debian's chromium; `make test` installs it (`make browser`) where it is missing."""
    assert Path(CHROMIUM).exists(), f"{CHROMIUM} missing: `make browser` installs Debian's chromium"
    return CHROMIUM


async def post_demo(receiver_url: str) -> tuple[int, list[MessageState]]:
    """Post the demo's sample webhooks and the unparseable ones; the number posted and the
    reference states of the samples' messages."""
    stream = mixed_stream(messages_per_kind=2, prefix="demo-")
    posts = [(w.provider, w.channel, w.body, w.content_type) for w in stream.webhooks]
    posts += [(provider, "main", body, "application/json") for provider, body in UNPARSEABLE]
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as http:
        for provider, channel, body, content_type in posts:
            url = f"{receiver_url}/webhooks/{provider}/{channel}"
            async with http.post(url, data=body, headers={"Content-Type": content_type}) as response:
                assert response.status == 200, await response.text()
    return len(posts), list(stream.expected.values())


def expected_activity(states: list[MessageState]) -> dict[str, dict[str, int]]:
    """Per scope, the transitions the reference fold of the samples gives (wa.metrics)."""
    expected: dict[str, dict[str, int]] = {}
    for state in states:
        for (scope, _), agg in contributions(None, state, 60_000).items():
            row = expected.setdefault(scope.key, dict.fromkeys(STATUSES, 0))
            for status in STATUSES:
                row[status] += agg.transitions[status]
    return expected


def expected_cohorts(states: list[MessageState]) -> dict[str, dict[str, int]]:
    """Per scope, the send-cohort counts the reference states of the samples give (wa.funnel)."""
    expected: dict[str, dict[str, int]] = {}
    for cohort, counts in cohort_funnel_of(states, HOUR).items():
        row = expected.setdefault(Scope(cohort.provider, cohort.channel, cohort.campaign).key, dict.fromkeys(COHORT, 0))
        summed = summary(counts)
        for name in COHORT:
            row[name] += summed[name]
    return expected


async def topics_view(settings: KafkaSettings, posted: int) -> dict[str, Any]:
    """What the page must show, computed here from the topics themselves."""
    bootstrap, topics = settings.bootstrap_servers, settings.topics
    held = cohorts_of(await read_topic(bootstrap, topics.funnel, "cohort_funnel"))
    alerts = await read_topic(bootstrap, topics.alerts, "alert")
    dead = await read_topic(bootstrap, topics.dlq, "dead_letter")
    return {
        "channels": {k: v for k, v in held.items() if "#" not in k},
        "campaigns": {k: v for k, v in held.items() if "#" in k},
        "dead_letters": len({(d["request_id"], d["reason"]) for d in dead}),
        "alerts_seen": len({a["alert_id"] for a in alerts}),
        "requests": posted,
        # Caught up on what was posted; the signals topic keeps getting the channel agent's timer
        # ticks, so its lag is a few records at any time.
        "lag": {topics.raw: 0, topics.events: 0},
    }


async def screenshots(page: Page, into: Path) -> list[Path]:
    """Laptop and phone width, full page; the phone layout must not scroll sideways."""
    laptop, phone = into / "dashboard.png", into / "dashboard-phone.png"
    await page.screenshot(path=str(laptop), full_page=True)
    await page.set_viewport_size({"width": 390, "height": 844})
    await page.wait_for_function("document.documentElement.scrollWidth <= window.innerWidth")
    await page.screenshot(path=str(phone), full_page=True)
    target = os.environ.get("STATUSFLOW_SCREENSHOT_DIR")
    if target:
        (REPO / target).mkdir(parents=True, exist_ok=True)
        for shot in (laptop, phone):
            shutil.copy(shot, REPO / target / shot.name)
    return [laptop, phone]


async def test_the_page_shows_what_the_topics_hold(
    kafka_settings: KafkaSettings,
    unique_id: str,
    receiver_url: str,
    start_worker: WorkerFactory,
    dashboard_url: str,
    chromium: str,
    tmp_path: Path,
) -> None:
    worker = start_worker(STATUSFLOW_IDLE_CLOSE_S="1", STATUSFLOW_TICK_INTERVAL_S="0.5", **NO_RETENTION)
    posted, states = await post_demo(receiver_url)
    # The worker is done when every scope's windows and cohorts add up to the reference fold of
    # the samples.
    activity, expected = expected_activity(states), expected_cohorts(states)
    metric_codec, funnel_codec = codec("metric_window"), codec("cohort_funnel")
    await consume(
        kafka_settings.bootstrap_servers,
        kafka_settings.topics.metrics,
        until=lambda records: funnel_of([metric_codec.decode(v) for _, v in records]) == activity,
        within=240,
    )
    await consume(
        kafka_settings.bootstrap_servers,
        kafka_settings.topics.funnel,
        until=lambda records: cohorts_of([funnel_codec.decode(v) for _, v in records]) == expected,
        within=120,
    )

    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=chromium)
        try:
            page = await browser.new_page(viewport={"width": 1366, "height": 900})
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            await page.goto(dashboard_url)
            # The page refreshes every second and the worker may still publish (stuck-message
            # alerts, final revisions): compare until topics and page agree.
            seen: dict[str, Any] = {}

            async def agree() -> dict[str, Any] | None:
                want, shown = await topics_view(kafka_settings, posted), await page_numbers(page)
                seen.update(shown=shown, want=want)
                shown["lag"] = {topic: lag for topic, lag in shown["lag"].items() if topic in want["lag"]}
                return shown if all(shown[k] == v for k, v in want.items()) else None

            try:
                shown = await wait_until(agree, within=120, what="the page to show what the topics hold")
            except AssertionError as exc:
                differ = {
                    k: {"topics": v, "page": seen["shown"][k]} for k, v in seen["want"].items() if seen["shown"][k] != v
                }
                raise AssertionError(f"{exc}; differing: {differ}") from exc
            shots = await screenshots(page, tmp_path)
        finally:
            await browser.close()

    assert shown["channels"] == {k: v for k, v in expected.items() if "#" not in k}
    assert set(shown["channels"]) == {f"{p}:main" for p in ("aivo", "generic", "gupshup", "infobip", "meta",
                                                           "twilio", "vonage", "weni", "wpp")}  # fmt: skip
    assert set(shown["campaigns"]) == {"aivo:main#hot-sale", "wpp:main#c-77"}
    assert shown["channels"]["meta:main"]["attempted"] == 6  # 3 lifecycles x 2 messages
    # Cohort rates cannot exceed 100 %: not in the data, not in any text of the page.
    assert shown["rates"] and all(0 <= r <= 1 for r in shown["rates"])
    assert shown["percents"] and all(0 <= p <= 100 for p in shown["percents"])
    assert shown["dead_letters"] == len(UNPARSEABLE)
    assert "channel_logout" in shown["firing"]  # the samples' WPP logout is never followed by news
    assert set(shown["lag_groups"]) == {f"statusflow-{unique_id}-normalize", f"statusflow-{unique_id}"}
    assert shown["latency"] and set(shown["latency"]) <= set(shown["channels"])
    assert shown["rate_lines"] >= 1
    # What a person reads (formatted text) is the same number as the data attribute.
    aivo = shown["channels"]["aivo:main"]
    assert [int(t.replace(",", "")) for t in shown["cells_text"][:6]] == [aivo[s] for s in COHORT]
    assert errors == []
    assert all(shot.stat().st_size > 10_000 for shot in shots)
    # The worker's own /metrics answers with its Faust sensors.
    async with aiohttp.ClientSession() as http, http.get(f"{worker.url}/metrics") as response:
        assert "statusflow_worker_messages_received_total" in await response.text()
