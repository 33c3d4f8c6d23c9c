"""Hash mode end to end: real receiver, broker and worker; no plain number on any derived topic.

Webhooks of several providers (one failure that alerts, one dead letter whose reason would
quote a number, one malformed body the receiver refuses) go through the whole pipeline with
STATUSFLOW_RECIPIENT_PRIVACY=hash. Every derived topic is then read in full: the recipients'
numbers appear nowhere, their keyed hashes do, and only wa.webhooks.raw (and the raw envelope
inside a dead letter, kept for replay) still holds the payload as sent.
"""

from __future__ import annotations

import aiohttp

from schemas.codec import codec
from schemas.privacy import hash_number
from schemas.settings import KafkaSettings
from tests.factories import FIXTURES
from tests.integration.conftest import WorkerFactory
from tests.integration.helpers import consume, wait_until

KEY = "privacy-test-key-0123456789"
JSON = "application/json"
FORM = "application/x-www-form-urlencoded"
WEBHOOKS = [
    ("meta", "status_sent.json", JSON),
    ("meta", "status_failed_not_on_whatsapp.json", JSON),  # a failure: alert and error title
    ("twilio", "status_delivered.form", FORM),
    ("infobip", "report_delivered.json", JSON),
    ("gupshup", "v2_sent.json", JSON),
]
NUMBERS = ["16505551234", "16505550000", "5511987654321", "919876543210"]
DEAD = (
    b'{"entry":[{"changes":[{"value":{"statuses":[{"id":"x","status":"5511987654321",'
    b'"timestamp":"1750030000","recipient_id":"5511987654321"}]}}]}]}'
)
MALFORMED = b'{"recipient_id": "5511987654321", '


async def test_hash_mode_leaves_no_recipient_number_on_derived_topics(
    receiver_url: str, start_worker: WorkerFactory, kafka_settings: KafkaSettings
) -> None:
    worker = start_worker(
        STATUSFLOW_RECIPIENT_PRIVACY="hash", STATUSFLOW_RECIPIENT_HASH_KEY=KEY, STATUSFLOW_IDLE_CLOSE_S="1"
    )
    async with aiohttp.ClientSession() as http:
        for provider, fixture, content_type in WEBHOOKS:
            body = (FIXTURES / provider / fixture).read_bytes()
            async with http.post(
                f"{receiver_url}/webhooks/{provider}", data=body, headers={"Content-Type": content_type}
            ) as response:
                assert response.status == 200, await response.text()
        async with http.post(f"{receiver_url}/webhooks/meta", data=DEAD, headers={"Content-Type": JSON}) as response:
            assert response.status == 200
        async with http.post(
            f"{receiver_url}/webhooks/meta", data=MALFORMED, headers={"Content-Type": JSON}
        ) as response:
            assert response.status == 400

        message = "wamid.HBgLMTY1MDM4Nzk0MzkVAgARGBJDQjZCMzlEQUE4OTJBMTE4RTUA"

        async def queried() -> dict[str, object] | None:
            try:
                async with http.get(f"{worker.url}/messages/meta/{message}") as response:
                    return await response.json() if response.status == 200 else None  # type: ignore[no-any-return]
            except aiohttp.ClientConnectionError:
                return None

        state = await wait_until(queried, within=120, what="the worker's state of the Meta message")
    assert state["recipient"] == hash_number("16505551234", KEY.encode())

    topics = kafka_settings.topics
    bootstrap = kafka_settings.bootstrap_servers
    changes = await consume(bootstrap, topics.changes, until=lambda rs: len(rs) >= len(WEBHOOKS), within=120)
    dlq = await consume(bootstrap, topics.dlq, until=lambda rs: len(rs) >= 1, within=60)
    alerts = await consume(bootstrap, topics.alerts, until=lambda rs: len(rs) >= 1, within=60)
    # Audits: one per webhook from normalize, the receiver's refusal, the tracker's.
    audits = await consume(bootstrap, topics.audit, until=lambda rs: len(rs) >= len(WEBHOOKS) + 2, within=60)
    events = await consume(bootstrap, topics.events, until=lambda rs: len(rs) >= 1, within=60)
    signals = await consume(bootstrap, topics.signals, until=lambda rs: len(rs) >= 1, within=60)
    metrics = await consume(bootstrap, topics.metrics, until=lambda rs: len(rs) >= 1, within=60)
    raw = await consume(bootstrap, topics.raw, until=lambda rs: len(rs) >= len(WEBHOOKS) + 1, within=60)

    letters = [codec("dead_letter").decode(v) for _, v in dlq]
    derived = {
        "changes": [v for _, v in changes],
        "alerts": [v for _, v in alerts],
        "audit": [v for _, v in audits],
        "events": [v for _, v in events],
        "signals": [v for _, v in signals],
        "metrics": [v for _, v in metrics],
        "dead-letter reasons": [letter["reason"].encode() for letter in letters],
    }
    for topic, values in derived.items():
        for number in NUMBERS:
            assert not any(number.encode() in value for value in values), f"{number} on {topic}"
    recipients = {codec("status_change").decode(v)["recipient"] for _, v in changes}
    assert recipients == {hash_number(n, KEY.encode()) for n in NUMBERS}
    # The receiver's audit of the refused body quotes it with the number masked (its own default mode).
    excerpts = [codec("audit_record").decode(v)["payload_excerpt"] for _, v in audits]
    assert any(e and "*********4321" in e for e in excerpts)
    # The source of truth keeps the payload as sent, and so does the dead letter's envelope, for replay.
    assert any(b"5511987654321" in v for _, v in raw)
    assert any(b"5511987654321" in letter["raw"] for letter in letters)
