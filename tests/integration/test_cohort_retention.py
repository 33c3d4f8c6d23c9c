"""Cohort rows close on a real worker: the row leaves the table, wa.funnel keeps the last record,
and a report for a closed cohort is counted as too late instead of resurrecting it."""

from __future__ import annotations

import itertools
import re
import time
from typing import Any

import aiohttp

from schemas.codec import codec
from schemas.envelope import RawWebhook
from schemas.settings import KafkaSettings
from schemas.topics import ensure_topics
from tests.integration.conftest import WorkerFactory, WorkerProcess
from tests.integration.helpers import consume, metrics_text, wait_until
from tests.integration.test_funnel import aivo
from tests.integration.test_message_ids import post

_requests = itertools.count()


def webhook(message: str, status: str, at_s: int, campaign: str, *, received_s: int) -> RawWebhook:
    return RawWebhook(
        request_id=f"req-close-{next(_requests):04d}",
        provider="aivo",
        channel="default",
        received_at=received_s * 1000,
        content_type="application/json",
        url="http://127.0.0.1/webhooks/aivo",
        body=aivo(message, status, at_s, campaign),
    )


async def funnel(worker: WorkerProcess, campaign: str) -> dict[str, Any] | None:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as http:
        try:
            async with http.get(f"{worker.url}/funnel/aivo/default", params={"campaign": campaign}) as response:
                return await response.json() if response.status == 200 else None
        except aiohttp.ClientError:
            return None


async def test_a_closed_cohort_leaves_the_table_keeps_its_last_record_and_counts_what_comes_late(
    kafka_settings: KafkaSettings, start_worker: WorkerFactory, unique_id: str
) -> None:
    await ensure_topics(kafka_settings)
    # Cohorts of a minute, unfinished messages kept 5 s: a cohort closes 70 s after its start
    # (its end, the retention, and the margin, which is the retention when under a day).
    worker = start_worker(
        STATUSFLOW_COHORT_S="60", STATUSFLOW_RETENTION_UNFINISHED_S="5", STATUSFLOW_TICK_INTERVAL_S="0.5"
    )
    now = int(time.time())
    old_at = now // 60 * 60 - 3600  # an hour ago: a cohort that closes once the channel reaches now
    old, fresh = f"old-{unique_id}", f"fresh-{unique_id}"
    # Received when they happened: the channel's watermark stays an hour back.
    await post(
        kafka_settings,
        *[webhook(f"wamid.{old}.{i}", "read", old_at + i, old, received_s=old_at + 5) for i in range(3)],
    )

    async def counted(campaign: str, attempted: int) -> dict[str, Any] | None:
        found = await funnel(worker, campaign)
        return found if found is not None and found["attempted"] == attempted else None

    before = await wait_until(lambda: counted(old, 3), within=120, what="the old cohort's funnel")
    assert before["read"] == 3
    assert len(before["cohorts"]) == 1

    # A fresh report moves the channel's watermark to now: the old cohort closes.
    await post(kafka_settings, webhook(f"wamid.{fresh}.0", "sent", now, fresh, received_s=now))
    await wait_until(lambda: counted(fresh, 1), within=60, what="the fresh cohort")
    after = await wait_until(lambda: counted(old, 0), within=60, what="the old cohort's row to leave")
    assert after["cohorts"] == []

    # The compacted topic keeps the cohort's last record, with its counts; the table's
    # changelog has the row's tombstone.
    funnel_codec = codec("cohort_funnel")
    cohort_key = f"aivo:default#{old}@{old_at * 1000}".encode()

    def last_of_old(records: list[tuple[bytes | None, bytes]]) -> bool:
        return any(key == cohort_key for key, _ in records)

    records = await consume(
        kafka_settings.bootstrap_servers, kafka_settings.topics.funnel, until=last_of_old, within=30
    )
    last = [funnel_codec.decode(value) for key, value in records if key == cohort_key][-1]
    assert (last["attempted"], last["read"]) == (3, 3)
    changelog = f"statusflow-{unique_id}-cohort_funnel-changelog"
    await consume(
        kafka_settings.bootstrap_servers,
        changelog,
        until=lambda rs: any(key == cohort_key and value is None for key, value in rs),
        within=30,
    )

    # A report of the closed cohort that still arrives is counted as too late, not folded.
    await post(kafka_settings, webhook(f"wamid.{old}.late", "read", old_at + 10, old, received_s=now + 1))

    async def late_counted() -> float | None:
        page = await metrics_text(worker.url)
        if page is None:
            return None
        found = re.findall(
            r'^statusflow_worker_events_too_late_total\{[^}]*provider="aivo"[^}]*stage="funnel_cohorts"[^}]*\} (\S+)$'
            r'|^statusflow_worker_events_too_late_total\{[^}]*stage="funnel_cohorts"[^}]*provider="aivo"[^}]*\} (\S+)$',
            page,
            re.M,
        )
        total = sum(float(a or b) for a, b in found)
        return total if total > 0 else None

    assert await wait_until(late_counted, within=60, what="the late report to be counted") >= 1
    still = await funnel(worker, old)
    assert still is not None and still["attempted"] == 0 and still["cohorts"] == []
