"""Issue 17, the upgrade path, on a real broker: a deployment whose tables hold `provider:id`
keys (a release before channels were part of a message's key) is upgraded as docs/runbook.md
says, by a replay of the raw log under a new app id, and then answers every message under its
channel-scoped key.

The old release's traces are made as it made them: the raw log, its state table's changelog
holding `generic:42` (a version 1 value: two channels' message 42 folded into one state, the
bug this fixes) and its normalize group's offsets at the end of the raw log.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Awaitable
from pathlib import Path
from typing import Any

import aiohttp
import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from devkit.kafka_local import free_port
from schemas.codec import codec
from schemas.envelope import RawWebhook
from schemas.settings import KafkaSettings
from schemas.topics import ensure_topics
from streams.topology import STATE_TABLE
from tests.integration.conftest import WorkerFactory, WorkerProcess
from tests.integration.helpers import post, read_topic, wait_until

T = 1_750_030_000_000  # epoch ms of the reports


def _generic(request_id: str, channel: str, status: str, at_ms: int, message_id: str = "42") -> RawWebhook:
    return RawWebhook(
        request_id=request_id,
        provider="generic",
        channel=channel,
        received_at=at_ms + 100,
        content_type="application/json",
        url=f"http://127.0.0.1/webhooks/generic/{channel}",
        body=orjson.dumps({"id": message_id, "status": status, "timestamp": at_ms}),
    )


async def _old_release_left(settings: KafkaSettings, app_id: str) -> None:
    """The old release's table and offsets: `generic:42` as one state (a version 1 value: channel,
    campaign, queued, created, sent, failed, delivered, read, failure, recipient, correlation,
    seen) and its normalize group done with the raw log."""
    changelog = f"{app_id}-{STATE_TABLE}-changelog"
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.bootstrap_servers)
    await admin.start()
    try:
        await admin.create_topics(
            [NewTopic(changelog, settings.partitions, 1, topic_configs={"cleanup.policy": "compact"})]
        )
    finally:
        await admin.close()
    old_value = [1, "default", None, None, None, T, None, T + 5000, T + 9000, None, None, None, []]
    producer = AIOKafkaProducer(bootstrap_servers=settings.bootstrap_servers, acks="all")
    await producer.start()
    try:
        await producer.send_and_wait(changelog, orjson.dumps(old_value), key=b"generic:42")
    finally:
        await producer.stop()
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.bootstrap_servers, group_id=f"{app_id}-normalize", enable_auto_commit=False
    )
    await consumer.start()
    try:
        partitions = [TopicPartition(settings.topics.raw, p) for p in range(settings.partitions)]
        ends = await consumer.end_offsets(partitions)
        consumer.assign(partitions)
        await consumer.commit(dict(ends.items()))
    finally:
        await consumer.stop()


async def _answer(url: str) -> tuple[int, Any]:
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as http, http.get(url) as response:
            return response.status, await response.json()
    except (aiohttp.ClientError, TimeoutError):
        return 0, None  # not up yet


async def _state(url: str, status: str) -> dict[str, Any] | None:
    code, body = await _answer(url)
    return body if code == 200 and body["status"] == status else None


async def test_a_deployment_keyed_provider_id_is_rebuilt_by_replay_and_answers_by_channel(
    kafka_settings: KafkaSettings, start_worker: WorkerFactory, unique_id: str, tmp_path: Path
) -> None:
    await ensure_topics(kafka_settings)
    await post(
        kafka_settings,
        _generic("r-sent", "default", "sent", T),
        _generic("r-delivered", "default", "delivered", T + 5000),
        _generic("r-read", "acme-wa", "read", T + 9000),  # another customer's message 42
    )
    old_app = f"statusflow-{unique_id}"  # the app id start_worker runs
    await _old_release_left(kafka_settings, old_app)

    # The new release on the old app id: the old key is read, but nothing is answered under it
    # (reports now land under channel-scoped keys), and the worker says what to do.
    in_place = start_worker("in-place")

    await wait_until(
        lambda: _says(in_place.log, "rebuild this app id's tables by replay"),
        within=120,
        what="the in-place worker to name the upgrade path",
    )
    assert (await _answer(f"{in_place.url}/messages/generic/42"))[0] == 404
    in_place.stop()

    # The upgrade: a replay of the raw log under a new app id (docs/runbook.md); its worker
    # keeps running as the deployment's worker (--follow), on the new app id and topics.
    new_app = f"upgraded-{unique_id}"
    port = free_port()
    env = {
        **os.environ,
        "KAFKA_BOOTSTRAP_SERVERS": kafka_settings.bootstrap_servers,
        "STATUSFLOW_DATA_DIR": str(tmp_path / "upgraded"),
        "STATUSFLOW_PARTITIONS": str(kafka_settings.partitions),
        **{f"STATUSFLOW_TOPIC_{k.upper()}": v for k, v in kafka_settings.topics.model_dump().items()},
    }
    log = tmp_path / "replay.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(  # noqa: ASYNC220 - a long-lived child, as an operator runs the CLI
            [sys.executable, "-m", "streams.replay", "--app-id", new_app, "--follow", "--web-port", str(port)],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    upgraded = WorkerProcess(proc=proc, url=f"http://127.0.0.1:{port}", log=log)
    try:
        await wait_until(
            lambda: _says(log, "replayed"), within=240, what="the replay to say it rebuilt the tables from the raw log"
        )
        default = await wait_until(
            lambda: _state(f"{upgraded.url}/messages/generic/default/42", "delivered"),
            within=30,
            what="the default channel's message 42 under its new key",
        )
        assert (default["message_key"], default["timestamps"]["sent_at"]) == ("generic:default:42", T)
        assert default["timestamps"]["read_at"] is None  # acme's read is acme's
        assert await _answer(f"{upgraded.url}/messages/generic/42") == (200, default)
        acme = await _state(f"{upgraded.url}/messages/generic/acme-wa/42", "read")
        assert acme is not None and acme["message_key"] == "generic:acme-wa:42"

        changes = await read_topic(kafka_settings.bootstrap_servers, f"{kafka_settings.topics.changes}.{new_app}")
        assert {key for key, _ in changes} == {b"generic:default:42", b"generic:acme-wa:42"}
        assert {codec("status_change").decode(v)["channel"] for _, v in changes} == {"default", "acme-wa"}

        # After the cut-over, new webhooks land in the rebuilt tables.
        await post(kafka_settings, _generic("r-new", "acme-wa", "sent", T + 60_000, message_id="43"))
        await wait_until(
            lambda: _state(f"{upgraded.url}/messages/generic/acme-wa/43", "sent"),
            within=60,
            what="a webhook after the upgrade tracked by the upgraded worker",
        )
    finally:
        upgraded.stop()


def _says(log: Path, words: str) -> Awaitable[bool | None]:
    async def found(seen: bool) -> bool | None:
        return True if seen else None

    return found(words in log.read_text(errors="replace"))
