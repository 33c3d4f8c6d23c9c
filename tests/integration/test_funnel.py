"""The send-cohort funnel through every real hop: receiver → normalize → track → channel → query.

Issue 15's check: the Aivo webhooks of a fresh campaign (10 messages sent, 6 of them delivered
and 4 of those read, 2 more read without a delivered, 2 errors), every webhook posted twice,
give attempted 10, delivered 8, read 6, failed 2 and rates 0.8, 0.75, 0.2; whichever of two
workers is asked, and the compacted wa.funnel topic's last record per key says the same.
"""

from __future__ import annotations

import time
from typing import Any

import aiohttp
import orjson
import pytest

from schemas.codec import codec
from schemas.settings import KafkaSettings
from tests.integration.conftest import WorkerFactory
from tests.integration.helpers import consume, wait_until

EXPECTED = {"attempted": 10, "delivered": 8, "read": 6, "failed": 2}
RATES = {"delivery_rate": 0.8, "read_rate": 0.75, "failure_rate": 0.2}


def aivo(message: str, status: str, at_s: int, campaign: str) -> bytes:
    body: dict[str, Any] = {
        "message_id": message,
        "message_status": status,
        "channel": {"channel_type": "Whatsapp", "name": "Tienda", "sender_id": "5491155550000"},
        "campaign": {"id": campaign, "name": "Funnel test"},
        "event_name": "msg_status",
        "event_timestamp": str(at_s),
        "recipient": {"id": "541112341234"},
    }
    if status == "error":
        body["error"] = {"code": 131026, "title": "Message undeliverable"}
    return orjson.dumps(body)


def campaign_webhooks(campaign: str) -> list[bytes]:
    # Early in the current hour, so every message has the same cohort whatever the clock says.
    base = int(time.time()) // 3600 * 3600 + 1
    messages = [f"wamid.{campaign}.{i}" for i in range(10)]
    bodies = [aivo(m, "sent", base + i, campaign) for i, m in enumerate(messages)]
    bodies += [aivo(m, "delivered", base + 100 + i, campaign) for i, m in enumerate(messages[:6])]
    bodies += [aivo(m, "read", base + 200 + i, campaign) for i, m in enumerate(messages[:4])]
    bodies += [aivo(m, "read", base + 200 + i, campaign) for i, m in enumerate(messages[6:8])]
    bodies += [aivo(m, "error", base + 50 + i, campaign) for i, m in enumerate(messages[8:])]
    # Every webhook twice; the reads of the first messages before their deliveries.
    return [body for body in (bodies[16:20] + bodies[:16] + bodies[20:]) for _ in range(2)]


async def test_campaign_funnel_counts_each_message_once_per_stage_on_any_worker(
    receiver_url: str, start_worker: WorkerFactory, kafka_settings: KafkaSettings, unique_id: str
) -> None:
    workers = [start_worker("a").url, start_worker("b").url]
    campaign = f"camp-{unique_id}"
    async with aiohttp.ClientSession() as http:
        for body in campaign_webhooks(campaign):
            async with http.post(
                f"{receiver_url}/webhooks/aivo", data=body, headers={"Content-Type": "application/json"}
            ) as response:
                assert response.status == 200, await response.text()

        async def funnel_of(worker: str) -> dict[str, Any] | None:
            try:
                async with http.get(f"{worker}/funnel/aivo/default", params={"campaign": campaign}) as response:
                    if response.status != 200:
                        return None
                    found: dict[str, Any] = await response.json()
            except aiohttp.ClientConnectionError:
                return None  # the worker's web server is not up yet
            # Settled: every webhook folded in (pending 0), on both workers' view.
            return found if found["attempted"] == 10 and found["pending"] == 0 else None

        for worker in workers:
            funnel = await wait_until(
                lambda w=worker: funnel_of(w), within=180, what=f"the campaign funnel on {worker}"
            )
            assert {k: funnel[k] for k in EXPECTED} == EXPECTED
            assert {k: funnel[k] for k in RATES} == pytest.approx(RATES)
            assert funnel["delivered_implied"] == 2
            assert sum(funnel["failures_by_reason"].values()) == 2  # 131026 reads as not_found
            assert funnel["failures_by_code"] == {"131026": 2}
            assert len(funnel["cohorts"]) == 1
            assert sum(funnel["sent_to_delivered"]) == 8
            # A period before the cohort selects nothing.
            async with http.get(
                f"{worker}/funnel/aivo/default", params={"campaign": campaign, "until": "1970-01-02T00:00:00Z"}
            ) as response:
                assert (await response.json())["attempted"] == 0

    funnel_codec = codec("cohort_funnel")

    def settled(records: list[tuple[bytes | None, bytes]]) -> bool:
        last = {key: funnel_codec.decode(value) for key, value in records}
        return any(r["campaign"] == campaign and r["attempted"] == 10 and r["pending"] == 0 for r in last.values())

    records = await consume(kafka_settings.bootstrap_servers, kafka_settings.topics.funnel, until=settled, within=60)
    last = {key: funnel_codec.decode(value) for key, value in records}
    (record,) = [r for r in last.values() if r["campaign"] == campaign]
    assert {k: record[k] for k in EXPECTED} == EXPECTED
    assert {k: record[k] for k in RATES} == pytest.approx(RATES)
    channel_wide = [r for r in last.values() if r["campaign"] is None and r["cohort_start"] == record["cohort_start"]]
    assert channel_wide
    assert channel_wide[0]["attempted"] >= 10
