"""Issue 16 on the real broker and a worker process: no status lost to a header or a neighbour.

Weni Cloud API and On-Premise bodies posted without a Content-Type, as forms, with PUT and PATCH
are tracked; an Aivo list with one bad item tracks the good item and dead-letters only the bad
one, by itself, with its position.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlencode

import aiohttp

from schemas.codec import codec
from schemas.settings import KafkaSettings
from tests.factories import FIXTURES
from tests.integration.conftest import WorkerFactory
from tests.integration.helpers import consume, wait_until

FORM = "application/x-www-form-urlencoded"
NO_TYPE = ""  # no Content-Type header at all
T = 1_750_030_000


def cloud(message_id: str, status: str) -> dict[str, Any]:
    """A Cloud API notification as Weni forwards it from a WhatsApp Cloud channel."""
    value = {"statuses": [{"id": message_id, "status": status, "timestamp": str(T), "recipient_id": "5582999999999"}]}
    return {"object": "whatsapp_business_account", "entry": [{"id": "4000", "changes": [{"value": value}]}]}


def onpremise(message_id: str, status: str) -> dict[str, Any]:
    """An On-Premise body as Weni forwards it from an older channel."""
    return {"statuses": [{"id": message_id, "status": status, "timestamp": str(T), "recipient_id": "5582999999999"}]}


def bracketed(doc: object, prefix: str = "") -> list[tuple[str, str]]:
    """A document as form fields with bracketed names, as a form builder writes nested data."""
    if isinstance(doc, dict):
        items: Any = doc.items()
    elif isinstance(doc, list):
        items = enumerate(doc)
    else:
        return [(prefix, str(doc))]
    pairs: list[tuple[str, str]] = []
    for key, value in items:
        pairs.extend(bracketed(value, f"{prefix}[{key}]" if prefix else str(key)))
    return pairs


def as_json(doc: object) -> bytes:
    return json.dumps(doc).encode()


def as_form(doc: object) -> bytes:
    return urlencode(bracketed(doc)).encode()


def as_payload_form(doc: object) -> bytes:
    return urlencode({"payload": json.dumps(doc)}).encode()


# (message id, method, Content-Type as sent, body): every one must be tracked as `read`.
WENI_CASES = [
    ("cloud-json-bare", "POST", NO_TYPE, as_json(cloud("cloud-json-bare", "read"))),
    ("onprem-json-bare", "POST", NO_TYPE, as_json(onpremise("onprem-json-bare", "read"))),
    ("cloud-json-textplain", "POST", "text/plain", as_json(cloud("cloud-json-textplain", "read"))),
    ("cloud-form", "POST", FORM, as_form(cloud("cloud-form", "read"))),
    ("onprem-form", "POST", FORM, as_form(onpremise("onprem-form", "read"))),
    ("cloud-payload-form-bare", "POST", NO_TYPE, as_payload_form(cloud("cloud-payload-form-bare", "read"))),
    ("onprem-form-bare", "POST", NO_TYPE, as_form(onpremise("onprem-form-bare", "read"))),
    ("cloud-put", "PUT", "application/json", as_json(cloud("cloud-put", "read"))),
    ("onprem-put-bare", "PUT", NO_TYPE, as_json(onpremise("onprem-put-bare", "read"))),
    ("cloud-put-form", "PUT", FORM, as_form(cloud("cloud-put-form", "read"))),
    ("onprem-patch-form-bare", "PATCH", NO_TYPE, as_form(onpremise("onprem-patch-form-bare", "read"))),
]


async def post(http: aiohttp.ClientSession, url: str, body: bytes, content_type: str, method: str = "POST") -> str:
    """Send one webhook; its request id once the receiver has made it durable."""
    headers = {"Content-Type": content_type} if content_type else {}
    skip = [] if content_type else ["Content-Type"]
    async with http.request(method, url, data=body, headers=headers, skip_auto_headers=skip) as response:
        assert response.status == 200, await response.text()
        request_id: str = (await response.json())["request_id"]
        return request_id


async def answer(http: aiohttp.ClientSession, url: str) -> dict[str, Any] | None:
    try:
        async with http.get(url) as response:
            return await response.json() if response.status == 200 else None
    except aiohttp.ClientConnectionError:
        return None  # the worker's web server is not up yet


async def test_weni_bodies_without_a_content_type_as_forms_and_with_put_are_tracked(
    receiver_url: str, start_worker: WorkerFactory, kafka_settings: KafkaSettings
) -> None:
    worker = start_worker().url
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as http:
        request_ids = {}
        for message_id, method, content_type, body in WENI_CASES:
            request_ids[message_id] = await post(http, f"{receiver_url}/webhooks/weni", body, content_type, method)

        async def all_read() -> list[dict[str, Any]] | None:
            states = [await answer(http, f"{worker}/messages/weni/{case[0]}") for case in WENI_CASES]
            done = all(s is not None and s["status"] == "read" for s in states)
            return [s for s in states if s is not None] if done else None

        states = await wait_until(all_read, within=120, what="every Weni variant tracked as read")
    assert [s["message_key"] for s in states] == [f"weni:default:{case[0]}" for case in WENI_CASES]
    assert all(s["timestamps"]["read_at"] == T * 1000 for s in states)

    # The normalize stage's audit says which webhooks had their content type sniffed.
    audit_codec = codec("audit_record")
    sniffed = {request_ids[mid] for mid, _, content_type, _ in WENI_CASES if not content_type}

    def normalize_audits(records: list[tuple[bytes | None, bytes]]) -> dict[str, dict[str, Any]]:
        found = {}
        for _, value in records:
            audit = audit_codec.decode(value)
            if audit["stage"] == "normalize":
                found[audit["request_id"]] = audit
        return found

    records = await consume(
        kafka_settings.bootstrap_servers,
        kafka_settings.topics.audit,
        until=lambda rs: set(request_ids.values()) <= set(normalize_audits(rs)),
        within=60,
    )
    audits = normalize_audits(records)
    for request_id in request_ids.values():
        detail = audits[request_id]["detail"] or ""
        assert audits[request_id]["outcome"] == "normalized"
        assert ("sent without a Content-Type" in detail) == (request_id in sniffed), detail
    assert "read as application/json (sent as 'text/plain')" in audits[request_ids["cloud-json-textplain"]]["detail"]
    assert "read as application/x-www-form-urlencoded" in audits[request_ids["onprem-form-bare"]]["detail"]


async def test_an_aivo_list_with_one_bad_item_tracks_the_good_item_and_dead_letters_only_the_bad(
    receiver_url: str, start_worker: WorkerFactory, kafka_settings: KafkaSettings
) -> None:
    worker = start_worker().url
    body = (FIXTURES / "aivo" / "batch_one_bad_item.json").read_bytes()
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as http:
        request_id = await post(http, f"{receiver_url}/webhooks/aivo", body, "application/json")

        async def good_delivered() -> dict[str, Any] | None:
            state = await answer(http, f"{worker}/messages/aivo/wamid.AIVO-GOOD")
            return state if state is not None and state["status"] == "delivered" else None

        state = await wait_until(good_delivered, within=120, what="the good item of the Aivo list tracked")
        assert state["campaign"] == "074116ff-76f3-47b7-8be2-92f465718a3e"

        async def bad_history() -> dict[str, Any] | None:
            return await answer(http, f"{worker}/messages/aivo/wamid.AIVO-BAD/history")

        history = await wait_until(bad_history, within=60, what="the bad item's dead letter in its history")
        # The bad item was not tracked: its message has no state, only its dead letter.
        async with http.get(f"{worker}/messages/aivo/wamid.AIVO-BAD") as response:
            assert response.status == 404
    (entry,) = history["history"]
    assert (entry["request_id"], entry["outcome"]) == (request_id, "dead_lettered")
    assert entry["detail"] == "body[1].message_status 'bounced-twice' is not a known Aivo status"

    records = await consume(
        kafka_settings.bootstrap_servers, kafka_settings.topics.dlq, until=lambda rs: len(rs) >= 1, within=60
    )
    letters = [codec("dead_letter").decode(value) for _, value in records]
    assert [(letter["request_id"], letter["reason"]) for letter in letters] == [
        (request_id, "body[1].message_status 'bounced-twice' is not a known Aivo status")
    ]
    assert codec("raw_webhook").decode(letters[0]["raw"])["body"] == body
