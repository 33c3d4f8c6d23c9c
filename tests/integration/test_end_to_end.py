"""A Meta webhook through every real hop: receiver → Kafka → normalize → track → query."""

from __future__ import annotations

import aiohttp
import pytest

from schemas.codec import codec
from schemas.settings import KafkaSettings
from tests.factories import FIXTURES
from tests.integration.conftest import WorkerFactory
from tests.integration.helpers import consume, wait_until

MESSAGE_ID = "wamid.HBgLMTY1MDM4Nzk0MzkVAgARGBJDQjZCMzlEQUE4OTJBMTE4RTUA"


@pytest.fixture
def worker(start_worker: WorkerFactory) -> str:
    """One worker on this test's topics; its web URL."""
    return start_worker().url


async def test_meta_webhook_becomes_queryable_state_and_a_change(
    receiver_url: str, worker: str, kafka_settings: KafkaSettings
) -> None:
    async with aiohttp.ClientSession() as http:
        for fixture in ("status_sent.json", "status_read.json"):
            body = (FIXTURES / "meta" / fixture).read_bytes()
            async with http.post(
                f"{receiver_url}/webhooks/meta", data=body, headers={"Content-Type": "application/json"}
            ) as response:
                assert response.status == 200, await response.text()
                assert (await response.json())["request_id"]

        async def state_is_read() -> dict[str, object] | None:
            try:
                async with http.get(f"{worker}/messages/meta/{MESSAGE_ID}") as response:
                    if response.status != 200:
                        return None
                    state: dict[str, object] = await response.json()
            except aiohttp.ClientConnectionError:
                return None  # the worker's web server is not up yet
            # Both webhooks folded in, whichever order they were normalised in.
            timestamps = state["timestamps"]
            assert isinstance(timestamps, dict)
            return state if state["status"] == "read" and timestamps["sent_at"] is not None else None

        state = await wait_until(state_is_read, within=120, what="sent and read folded into the worker's table")
    assert state["message_key"] == f"meta:default:{MESSAGE_ID}"
    assert state["campaign"] == "campaign-42"
    assert state["delivered_implied"] is True
    assert state["timestamps"] == {
        "queued_at": None,
        "created_at": None,
        "sent_at": 1_750_030_073_000,
        "failed_at": None,
        "delivered_at": 1_750_030_090_000,
        "read_at": 1_750_030_090_000,
    }

    change_codec = codec("status_change")
    records = await consume(
        kafka_settings.bootstrap_servers,
        kafka_settings.topics.changes,
        until=lambda rs: len(rs) >= 2,
        within=60,
    )
    changes = [change_codec.decode(value) for _, value in records]
    # The two webhooks have different request ids, so they may be normalised in either
    # order: the changes differ by order, the final state does not.
    assert len(changes) == 2
    assert changes[0]["previous_status"] is None
    assert changes[-1]["status"] == "read"
    assert changes[-1]["sent_at"] == 1_750_030_073_000
    assert changes[-1]["read_at"] == 1_750_030_090_000
    assert len({c["change_id"] for c in changes}) == 2
    assert all(key == f"meta:default:{MESSAGE_ID}".encode() for key, _ in records)


async def test_unparseable_webhook_is_dead_lettered_with_its_reason(
    receiver_url: str, worker: str, kafka_settings: KafkaSettings
) -> None:
    body = (
        b'{"object":"whatsapp_business_account","entry":[{"changes":[{"value":'
        b'{"statuses":[{"id":"x","status":"in_orbit","timestamp":"1"}]}}]}]}'
    )
    async with (
        aiohttp.ClientSession() as http,
        http.post(f"{receiver_url}/webhooks/meta", data=body, headers={"Content-Type": "application/json"}) as response,
    ):
        assert response.status == 200
        request_id = (await response.json())["request_id"]
    records = await consume(
        kafka_settings.bootstrap_servers, kafka_settings.topics.dlq, until=lambda rs: len(rs) >= 1, within=120
    )
    (key, value), *_ = records
    letter = codec("dead_letter").decode(value)
    assert key == request_id.encode()
    assert "in_orbit" in letter["reason"]
    assert codec("raw_webhook").decode(letter["raw"])["body"] == body
