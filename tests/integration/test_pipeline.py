"""The whole worker on a mixed stream: every provider, repeats, out of order, failures, crashes."""

from __future__ import annotations

import collections
import dataclasses
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiokafka import AIOKafkaProducer

from devkit.kafka_local import free_port
from schemas.codec import codec
from schemas.settings import KafkaSettings
from schemas.topics import ensure_topics
from statusflow_cli.samples import MixedStream, meta, mixed_stream, reference_fold
from streams.core.records import message_path, state_view
from streams.domain.alerting import KIND_BY_REASON
from streams.domain.events import parse_message_key
from streams.domain.lattice import MessageState
from tests.integration.conftest import WorkerFactory, WorkerProcess
from tests.integration.helpers import consume, wait_until

FAST_WINDOWS = {
    "STATUSFLOW_IDLE_CLOSE_S": "1",
    "STATUSFLOW_TICK_INTERVAL_S": "0.5",
    "STATUSFLOW_ALERT_LIMIT_PER_WINDOW": "100",
}


async def produce_raw(settings: KafkaSettings, stream: MixedStream, start: int = 0, stop: int | None = None) -> None:
    """Write envelopes to wa.webhooks.raw exactly as the receiver does."""
    producer = AIOKafkaProducer(bootstrap_servers=settings.bootstrap_servers, acks="all", enable_idempotence=True)
    await producer.start()
    try:
        for webhook in stream.webhooks[start:stop]:
            await producer.send(settings.topics.raw, webhook.to_avro(), key=webhook.request_id.encode())
        await producer.flush()
    finally:
        await producer.stop()


async def _ask(http: aiohttp.ClientSession, worker: WorkerProcess, key: str) -> tuple[int | None, dict[str, Any]]:
    """The worker's answer for one message key: (HTTP status or None, the state or what went wrong)."""
    try:
        async with http.get(f"{worker.url}{message_path(parse_message_key(key))}") as response:
            if response.status != 200:
                return response.status, {"http_status": response.status, "body": (await response.text())[:300]}
            return 200, await response.json()
    except (aiohttp.ClientConnectionError, TimeoutError) as exc:
        return None, {"error": repr(exc)}


async def wait_for_table(
    worker: WorkerProcess, expected: dict[str, MessageState], statuses: collections.Counter[int] | None = None
) -> dict[str, dict[str, Any]]:
    """Query every expected key until each answers the reference state (HTTP statuses seen are
    counted into `statuses`)."""
    answers: dict[str, dict[str, Any]] = {}
    seen: collections.Counter[int] = collections.Counter() if statuses is None else statuses

    async def all_match() -> bool | None:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as http:
            for key, state in expected.items():
                if answers.get(key) == state_view(state):
                    continue
                status, answers[key] = await _ask(http, worker, key)
                if status is not None:
                    seen[status] += 1
                if answers[key] != state_view(state):
                    return None
        return True

    try:
        await wait_until(all_match, within=120, what="every message to reach its reference state")
    except AssertionError:
        # all_match stops at the first key that differs: ask every key once more so the
        # failure tells how many keys are wrong and how.
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as http:
            for key in expected:
                _, answers[key] = await _ask(http, worker, key)
        mismatched = {
            k: (answers.get(k), state_view(v)) for k, v in expected.items() if answers.get(k) != state_view(v)
        }
        kinds = collections.Counter(
            str((answer or {}).get("http_status", "wrong state")) for answer, _ in mismatched.values()
        )
        raise AssertionError(
            f"{len(mismatched)} of {len(expected)} keys differ ({dict(kinds)}): {sorted(mismatched)[:20]}, "
            f"e.g. {next(iter(mismatched.items()))}"
        ) from None
    return answers


async def test_mixed_stream_gives_the_reference_table_changes_alerts_and_metrics(
    kafka_settings: KafkaSettings, start_worker: WorkerFactory
) -> None:
    stream = mixed_stream()
    await ensure_topics(kafka_settings)
    await produce_raw(kafka_settings, stream)
    worker = start_worker(**FAST_WINDOWS)
    await wait_for_table(worker, stream.expected)

    # Changes: each is published once although every webhook arrived twice. A state is
    # visible in the table as soon as it is written; its change follows within the batch.
    change_codec = codec("status_change")
    expected_final = {k: s.status.value for k, s in stream.expected.items() if s.status}  # type: ignore[union-attr]

    def finals(records: list[tuple[bytes | None, bytes]]) -> dict[str, str]:
        decoded = (change_codec.decode(v) for _, v in records)
        return {c["message_key"]: c["status"] for c in decoded}

    records = await consume(
        kafka_settings.bootstrap_servers,
        kafka_settings.topics.changes,
        until=lambda rs: finals(rs) == expected_final,
        within=30,
    )
    changes = [change_codec.decode(v) for _, v in records]
    ids = [c["change_id"] for c in changes]
    assert len(ids) == len(set(ids))
    assert finals(records) == expected_final

    # Alerts: one per failed message and kind, deterministic ids, no repeats.
    expected_kinds = collections.Counter(
        KIND_BY_REASON[s.failure.reason] for s in stream.expected.values() if s.failure is not None
    )
    alert_codec = codec("alert")
    alerts_records = await consume(
        kafka_settings.bootstrap_servers,
        kafka_settings.topics.alerts,
        until=lambda rs: (
            sum(alert_codec.decode(v)["message_key"] is not None for _, v in rs) >= sum(expected_kinds.values())
        ),
        within=60,
    )
    alerts = [alert_codec.decode(v) for _, v in alerts_records]
    message_alerts = [a for a in alerts if a["message_key"] is not None]
    assert collections.Counter(a["kind"] for a in message_alerts) == expected_kinds
    assert len({a["alert_id"] for a in message_alerts}) == len(message_alerts)
    # WPP's logout is a channel event, not a message status.
    logouts = await consume(
        kafka_settings.bootstrap_servers,
        kafka_settings.topics.alerts,
        until=lambda rs: any(alert_codec.decode(v)["kind"] == "channel_logout" for _, v in rs),
        within=30,
    )
    (logout,) = {
        a["alert_id"]: a for a in map(alert_codec.decode, (v for _, v in logouts)) if a["kind"] == "channel_logout"
    }.values()
    assert (logout["provider"], logout["channel"], logout["severity"]) == ("wpp", "main", "critical")

    # Metrics: windows close once the channel is idle; their transitions add up to the table's.
    metric_codec = codec("metric_window")
    expected_transitions = collections.Counter(
        status
        for state in stream.expected.values()
        for status in ("queued", "created", "sent", "failed", "delivered", "read")
        if getattr(state, f"{status}_at") is not None
    )

    def latest(records: list[tuple[bytes | None, bytes]]) -> dict[str, dict[str, Any]]:
        windows: dict[str, dict[str, Any]] = {}
        for _, value in records:
            m = metric_codec.decode(value)
            if m["scope"] == "channel" and m["revision"] >= windows.get(m["metric_id"], {"revision": -1})["revision"]:
                windows[m["metric_id"]] = m
        return windows

    def totals(records: list[tuple[bytes | None, bytes]]) -> collections.Counter[str]:
        total: collections.Counter[str] = collections.Counter()
        for m in latest(records).values():
            total.update({k: v for k, v in m["transitions"].items() if v})
        return total

    await consume(
        kafka_settings.bootstrap_servers,
        kafka_settings.topics.metrics,
        until=lambda rs: totals(rs) == expected_transitions,
        within=60,
    )


@pytest.mark.parametrize("store", ["memory", "rocksdb"])
async def test_worker_killed_mid_stream_recovers_its_table_and_converges(
    kafka_settings: KafkaSettings, start_worker: WorkerFactory, store: str
) -> None:
    stream = mixed_stream(messages_per_kind=4, seed=5)
    await ensure_topics(kafka_settings)
    half = len(stream.webhooks) // 2
    await produce_raw(kafka_settings, stream, stop=half)
    first = start_worker("first", STATUSFLOW_STORE=store)
    # Wait until the first half is in the table, then SIGKILL: no commit, no flush.
    await wait_for_table(first, reference_fold(stream.webhooks[:half]))
    first.kill()
    await produce_raw(kafka_settings, stream, start=half)
    # The same data directory: with RocksDB the restarted worker reopens its store and reads
    # the changelog from where the store left off.
    second = start_worker("first", STATUSFLOW_STORE=store)
    await wait_for_table(second, stream.expected)
    if store == "memory":
        # The memory store was filled by its bulk load of the changelog (streams/faust_ext/table_store.py),
        # and Faust's recovery resumed from where the load ended.
        loaded = re.findall(r"(\d+) changelog records of 4 partitions loaded", second.log.read_text(errors="replace"))
        assert loaded and int(loaded[0]) > 0, loaded


async def test_two_workers_split_the_work_answer_any_key_and_survive_one_dying(
    kafka_settings: KafkaSettings, start_worker: WorkerFactory
) -> None:
    first_half = mixed_stream(messages_per_kind=3, seed=1)
    second_half = mixed_stream(messages_per_kind=3, seed=2, prefix="later-")
    await ensure_topics(kafka_settings)
    a = start_worker("a")
    await produce_raw(kafka_settings, first_half, stop=len(first_half.webhooks) // 2)
    b = start_worker("b")
    await produce_raw(kafka_settings, first_half, start=len(first_half.webhooks) // 2)
    # Both workers answer every key: the one that does not own it proxies to the owner.
    await wait_for_table(a, first_half.expected)
    await wait_for_table(b, first_half.expected)
    a.kill()
    await produce_raw(kafka_settings, second_half)
    statuses: collections.Counter[int] = collections.Counter()
    await wait_for_table(b, {**first_half.expected, **second_half.expected}, statuses)
    # Until the group moves A's partitions, B cannot reach their owner: it says so (503 with
    # Retry-After) rather than failing with a 500.
    assert not [status for status in statuses if status >= 500 and status != 503], statuses


async def test_replay_rebuilds_the_same_table_under_a_new_app_id(
    kafka_settings: KafkaSettings, start_worker: WorkerFactory, unique_id: str, tmp_path: Path
) -> None:
    stream = mixed_stream(messages_per_kind=2, seed=3)
    await ensure_topics(kafka_settings)
    await produce_raw(kafka_settings, stream)
    live = start_worker("live")
    await wait_for_table(live, stream.expected)

    port = free_port()
    env = {
        **os.environ,
        "KAFKA_BOOTSTRAP_SERVERS": kafka_settings.bootstrap_servers,
        "STATUSFLOW_DATA_DIR": str(tmp_path / "replay"),
        **{f"STATUSFLOW_TOPIC_{k.upper()}": v for k, v in kafka_settings.topics.model_dump().items()},
    }
    log = tmp_path / "replay.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(  # noqa: ASYNC220 - a long-lived child, as an operator runs the CLI
            [
                sys.executable,
                "-m",
                "streams.replay",
                "--app-id",
                f"replay-{unique_id}",
                "--follow",
                "--web-port",
                str(port),
            ],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    replayed = WorkerProcess(proc=proc, url=f"http://127.0.0.1:{port}", log=log)
    try:
        await wait_for_table(replayed, stream.expected)
        await wait_until(
            lambda: _async_value("replayed" in log.read_text(errors="replace") or None),
            within=60,
            what="the replay to report that it caught up",
        )
        assert f"{kafka_settings.topics.changes}.replay-{unique_id}" in log.read_text(errors="replace")
    finally:
        replayed.stop()


async def _async_value(value: bool | None) -> bool | None:
    return value


async def test_retention_removes_messages_with_tombstones_and_expires_unfinished_ones(
    kafka_settings: KafkaSettings, start_worker: WorkerFactory
) -> None:
    # Retention runs on the stream's own time: a last webhook a day later on every partition
    # makes every earlier message due under bounds of a few seconds.
    stream = mixed_stream(messages_per_kind=1, seed=9, repeat_all=False, prefix="ret-")
    await ensure_topics(kafka_settings)
    await produce_raw(kafka_settings, stream)
    later = [
        dataclasses.replace(
            stream.webhooks[0],
            provider="meta",
            content_type="application/json",
            request_id=f"clock-{i}",
            body=meta(f"clock-{i}", "read", 86_400)[0],
        )
        for i in range(16)
    ]
    await produce_raw(kafka_settings, MixedStream(later, {}))
    worker = start_worker(
        STATUSFLOW_RETENTION_FINISHED_S="1", STATUSFLOW_RETENTION_UNFINISHED_S="2", STATUSFLOW_TICK_INTERVAL_S="0.5"
    )
    unfinished = {
        k for k, s in stream.expected.items() if s.status is not None and s.status.value not in {"read", "failed"}
    }
    assert unfinished  # the stream has delivered-only messages

    change_codec = codec("status_change")

    def expired_keys(records: list[tuple[bytes | None, bytes]]) -> set[str]:
        return {c["message_key"] for c in (change_codec.decode(v) for _, v in records) if c["status"] == "expired"}

    await consume(
        kafka_settings.bootstrap_servers,
        kafka_settings.topics.changes,
        until=lambda rs: expired_keys(rs) == unfinished,
        within=60,
    )

    async def all_gone() -> bool | None:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as http:
            for key in stream.expected:
                async with http.get(f"{worker.url}{message_path(parse_message_key(key))}") as response:
                    if response.status != 404:
                        return None
        return True

    await wait_until(all_gone, within=60, what="every message to leave the table")
    changelog = f"statusflow-{kafka_settings.topics.raw.split('.')[0][1:]}-message_state-changelog"
    tombstones = await consume(
        kafka_settings.bootstrap_servers,
        changelog,
        until=lambda rs: {k.decode() for k, v in rs if v is None and k} >= set(stream.expected),
        within=30,
    )
    assert tombstones
