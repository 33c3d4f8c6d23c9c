"""One message under all its ids, and its history, on a real broker and worker processes."""

from __future__ import annotations

import dataclasses
import itertools
import json
import time
from typing import Any

import aiohttp

from schemas.codec import codec
from schemas.envelope import RawWebhook
from schemas.settings import KafkaSettings
from schemas.topics import ensure_topics
from tests.integration.conftest import WorkerFactory, WorkerProcess
from tests.integration.helpers import consume, post, wait_until

T0 = int(time.time()) - 600
_requests = itertools.count()


def gupshup(kind: str, wa_id: str, gs_id: str | None, at: int) -> RawWebhook:
    """A Gupshup v2 message event: WhatsApp's id in `id`, Gupshup's in `gsId` when it came."""
    payload: dict[str, object] = {"id": wa_id, "type": kind, "destination": "919876543210", "payload": {"ts": at}}
    if gs_id is not None:
        payload["gsId"] = gs_id
    if kind == "enqueued":  # Gupshup's id in `id`, WhatsApp's inside
        payload = {**payload, "id": gs_id, "payload": {"whatsappMessageId": wa_id, "type": "session"}}
    body = {"app": "Shop", "type": "message-event", "payload": payload, "timestamp": at * 1000}
    return RawWebhook(
        request_id=f"req-{next(_requests):04d}",
        provider="gupshup",
        channel="default",
        received_at=at * 1000 + 300,
        content_type="application/json",
        url="http://127.0.0.1/webhooks/gupshup",
        body=json.dumps(body).encode(),
    )


async def answer(worker: WorkerProcess, path: str) -> dict[str, Any] | None:
    """The worker's JSON answer, None until it answers 200."""
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as http:
        try:
            async with http.get(f"{worker.url}{path}") as response:
                return await response.json() if response.status == 200 else None
        except aiohttp.ClientError:
            return None


async def reads(worker: WorkerProcess, ids: list[str], status: str, key: str) -> list[dict[str, Any]]:
    """Wait until every id answers the state of `key` with `status`."""

    async def probe() -> list[dict[str, Any]] | None:
        found = [await answer(worker, f"/messages/gupshup/{i}") for i in ids]
        ok = all(f is not None and f["status"] == status and f["message_key"] == key for f in found)
        return [f for f in found if f is not None] if ok else None

    return await wait_until(probe, within=90, what=f"{ids} to answer {key} {status}")


async def test_a_gupshup_message_reads_read_under_both_ids_in_any_order_and_after_a_restart(
    kafka_settings: KafkaSettings, start_worker: WorkerFactory
) -> None:
    await ensure_topics(kafka_settings)
    worker = start_worker("w1")
    # A: gsId reports first. B: the late WhatsApp-id-only report first.
    await post(
        kafka_settings,
        gupshup("enqueued", "wa-A", "gs-A", T0),
        gupshup("sent", "wa-A", "gs-A", T0 + 1),
        gupshup("read", "wa-B", None, T0 + 9),
    )
    await reads(worker, ["gs-A", "wa-A"], "sent", "gupshup:default:gs-A")
    await reads(worker, ["wa-B"], "read", "gupshup:default:wa-B")
    await post(kafka_settings, gupshup("sent", "wa-B", "gs-B", T0 + 1))
    both = await reads(worker, ["gs-B", "wa-B"], "read", "gupshup:default:gs-B")
    assert both[0] == both[1]
    assert both[0]["timestamps"]["sent_at"] == (T0 + 1) * 1000

    # The correlation is state with a changelog: a new worker knows it.
    worker.stop()
    worker = start_worker("w2")
    await post(kafka_settings, gupshup("read", "wa-A", None, T0 + 30))
    both = await reads(worker, ["gs-A", "wa-A"], "read", "gupshup:default:gs-A")
    assert both[0] == both[1]
    history = await answer(worker, "/messages/gupshup/wa-A/history")
    assert history is not None
    assert [(h["provider_status"], h["outcome"]) for h in history["history"]] == [
        ("enqueued", "changed"),
        ("sent", "changed"),
        ("read", "changed"),
    ]
    assert history == await answer(worker, "/messages/gupshup/gs-A/history")


async def test_history_by_message_and_dead_letters_that_name_their_message(
    kafka_settings: KafkaSettings, start_worker: WorkerFactory
) -> None:
    await ensure_topics(kafka_settings)
    worker = start_worker()
    # The same report posted six times, received a millisecond apart.
    six = [
        dataclasses.replace(w, received_at=w.received_at + i)
        for i, w in enumerate(gupshup("sent", "wa-C", "gs-C", T0 + 1) for _ in range(6))
    ]
    bad = gupshup("in_orbit", "wa-D", "gs-D", T0 + 2)
    await post(kafka_settings, *six, bad)

    async def six_entries() -> dict[str, Any] | None:
        found = await answer(worker, "/messages/gupshup/gs-C/history")
        return found if found is not None and len(found["history"]) == 6 else None

    history = await wait_until(six_entries, within=90, what="a history of six entries")
    entries = history["history"]
    assert [e["request_id"] for e in entries] == [w.request_id for w in six]
    # Arrival order; which one changed the state is the one tracked first (the raw log's
    # partitions are read in no particular order).
    assert [e["received_at"] for e in entries] == [w.received_at for w in six]
    assert sorted(e["outcome"] for e in entries) == ["changed"] + ["duplicate"] * 5
    assert {(e["provider_status"], e["status"]) for e in entries} == {("sent", "sent")}

    async def dead_letter_entry() -> dict[str, Any] | None:
        return await answer(worker, "/messages/gupshup/gs-D/history")

    (entry,) = (await wait_until(dead_letter_entry, within=60, what="the dead letter's history"))["history"]
    assert (entry["request_id"], entry["outcome"]) == (bad.request_id, "dead_lettered")

    audit_codec = codec("audit_record")

    def named(records: list[tuple[bytes | None, bytes]]) -> bool:
        return any(
            (r := audit_codec.decode(v))["outcome"] == "dead_lettered" and "gupshup:default:gs-D" in r["message_keys"]
            for _, v in records
        )

    await consume(kafka_settings.bootstrap_servers, kafka_settings.topics.audit, until=named, within=30)
