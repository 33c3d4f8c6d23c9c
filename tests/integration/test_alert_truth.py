"""Alerts without false alarms and windows that lose nothing, on a real broker and worker.

Vonage never reports `sent` (its `submitted` is queued): its rejections must be judged against
its deliveries, and its messages that never get further than submitted must still be found
stuck. A report stamped hours ahead must not make the reports after it too late to count.
"""

from __future__ import annotations

import collections
import re
import time
from typing import Any

import aiohttp

from schemas.codec import codec
from schemas.envelope import RawWebhook
from schemas.settings import KafkaSettings
from schemas.topics import ensure_topics
from statusflow_cli.samples import MixedStream
from tests.channel_stage import vonage
from tests.integration.conftest import WorkerFactory, WorkerProcess
from tests.integration.helpers import consume, metrics_text, read_topic, wait_until
from tests.integration.test_pipeline import FAST_WINDOWS, produce_raw

Records = list[tuple[bytes | None, bytes]]
ALERT = codec("alert")
METRIC = codec("metric_window")


async def _produce(settings: KafkaSettings, webhooks: list[RawWebhook]) -> None:
    await produce_raw(settings, MixedStream(webhooks=webhooks, expected={}))


def _traffic(channel: str, delivered: int, rejected: int, start_s: int, spread_s: int) -> list[RawWebhook]:
    """Each message submitted, then delivered or rejected two seconds later; in time order."""
    webhooks = []
    total = delivered + rejected
    for i in range(total):
        at = start_s + i * spread_s // total
        outcome, code = ("delivered", None) if i < delivered else ("rejected", 1340)
        webhooks.append(vonage(f"{channel}-{i}", "submitted", at, received_s=at, channel=channel))
        webhooks.append(vonage(f"{channel}-{i}", outcome, at + 2, received_s=at + 2, channel=channel, error_code=code))
    return sorted(webhooks, key=lambda w: w.received_at)


def _window_totals(records: Records, provider: str, channel: str, campaign: str | None) -> collections.Counter[str]:
    """Transitions of the latest revision of each published window of one scope."""
    latest: dict[str, dict[str, Any]] = {}
    for _, value in records:
        m = METRIC.decode(value)
        if (m["provider"], m["channel"], m["campaign"]) != (provider, channel, campaign):
            continue
        if m["revision"] >= latest.get(m["metric_id"], {"revision": -1})["revision"]:
            latest[m["metric_id"]] = m
    total: collections.Counter[str] = collections.Counter()
    for m in latest.values():
        total.update({k: v for k, v in m["transitions"].items() if v})
    return total


def _alerts(records: Records) -> list[dict[str, Any]]:
    return [ALERT.decode(v) for _, v in records]


async def _channel_view(worker: WorkerProcess, provider: str, channel: str) -> dict[str, Any] | None:
    try:
        async with (
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as http,
            http.get(f"{worker.url}/channels/{provider}/{channel}") as response,
        ):
            return await response.json() if response.status == 200 else None
    except (aiohttp.ClientError, TimeoutError):
        return None


async def test_vonage_rejections_under_the_threshold_raise_no_spike_and_stuck_submissions_alert(
    kafka_settings: KafkaSettings, start_worker: WorkerFactory
) -> None:
    now_s = int(time.time())
    # Three messages submitted 15 minutes ago that never got further (a channel of their own:
    # the bound of 5 minutes is far from the traffic's few seconds, so none of the traffic's
    # submissions can come due while the test runs), then the traffic.
    stuck = [vonage(f"stuck-{i}", "submitted", now_s - 900, received_s=now_s - 900, channel="slow") for i in range(3)]
    main = _traffic("main", delivered=300, rejected=25, start_s=now_s - 20, spread_s=15)
    burst = _traffic("burst", delivered=100, rejected=60, start_s=now_s - 20, spread_s=15)  # a real spike
    await ensure_topics(kafka_settings)
    await _produce(kafka_settings, stuck + main + burst)
    worker = start_worker(**FAST_WINDOWS, STATUSFLOW_STUCK_AFTER_S="300")
    bootstrap, topics = kafka_settings.bootstrap_servers, kafka_settings.topics

    # Every report of `main` is counted in its windows.
    expected = collections.Counter(queued=325, delivered=300, failed=25)
    await consume(
        bootstrap,
        topics.metrics,
        until=lambda rs: _window_totals(rs, "vonage", "main", None) == expected,
        within=90,
    )

    def seen(rs: Records) -> bool:
        alerts = _alerts(rs)
        spikes = {a["channel"] for a in alerts if a["kind"] == "failure_rate_spike"}
        stuck_keys = {a["message_key"] for a in alerts if a["kind"] == "stuck_in_queued"}
        return "burst" in spikes and stuck_keys == {f"vonage:slow:stuck-{i}" for i in range(3)}

    # The same rule does fire on the channel whose failures are 37 % of its outcomes, and
    # the submissions that never went further are found stuck in their own progress state.
    await consume(bootstrap, topics.alerts, until=seen, within=90)

    async def main_judged() -> dict[str, Any] | None:
        view = await _channel_view(worker, "vonage", "main")
        if view is None:
            return None
        counted: collections.Counter[str] = collections.Counter()
        for w in view["windows"]:
            counted.update({k: v for k, v in w["transitions"].items() if v})
        return view if counted == expected else None

    view = await wait_until(main_judged, within=30, what="the channel view of vonage:main")
    assert view["failure_rate_spike"] is False
    alerts = _alerts(await read_topic(bootstrap, topics.alerts))
    assert [a for a in alerts if a["kind"] == "failure_rate_spike" and a["channel"] == "main"] == []
    (spike,) = [a for a in alerts if a["kind"] == "failure_rate_spike" and a["channel"] == "burst"]
    assert (spike["state"], spike["severity"], spike["count"]) == ("firing", "critical", 160)
    assert [a["channel"] for a in alerts if a["kind"] == "stuck_in_queued"] == ["slow"] * 3
    assert not any(a["kind"] == "stuck_in_sent" for a in alerts)


async def test_a_report_stamped_three_hours_ahead_then_20_deliveries_all_count(
    kafka_settings: KafkaSettings, start_worker: WorkerFactory
) -> None:
    now_s = int(time.time())
    campaign = "fresh-campaign"
    ahead = vonage("ahead", "delivered", now_s + 3 * 3600, received_s=now_s, channel="fresh", campaign=campaign)
    await ensure_topics(kafka_settings)
    await _produce(kafka_settings, [ahead])
    worker = start_worker(**FAST_WINDOWS)
    bootstrap, topics = kafka_settings.bootstrap_servers, kafka_settings.topics

    async def tracked() -> bool | None:
        try:
            async with (
                aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as http,
                http.get(f"{worker.url}/messages/vonage/fresh/ahead") as response,
            ):
                return True if response.status == 200 else None
        except (aiohttp.ClientError, TimeoutError):
            return None

    await wait_until(tracked, within=60, what="the report stamped ahead to be tracked")
    deliveries = [
        vonage(f"d{i}", "delivered", now_s + i, received_s=now_s + i, channel="fresh", campaign=campaign)
        for i in range(20)
    ]
    await _produce(kafka_settings, deliveries)

    def all_counted(rs: Records) -> bool:
        return (
            _window_totals(rs, "vonage", "fresh", None)["delivered"] == 21
            and _window_totals(rs, "vonage", "fresh", campaign)["delivered"] == 21
        )

    await consume(bootstrap, topics.metrics, until=all_counted, within=60)
    page = await metrics_text(worker.url)
    assert page is not None
    # The counter of reports too late for every window is exposed, and nothing was too late.
    assert "statusflow_worker_events_too_late_total" in page
    late = re.findall(r'^statusflow_worker_events_too_late_total\{[^}]*provider="vonage"[^}]*\} (\S+)$', page, re.M)
    assert all(float(v) == 0 for v in late)
