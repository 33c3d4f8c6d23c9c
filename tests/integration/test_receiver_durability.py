"""Nothing that got a 2xx is lost: a broker outage mid-stream, and a receiver killed with a full spool."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest
from aiohttp.test_utils import TestServer
from aiokafka import AIOKafkaConsumer, TopicPartition

from devkit import kafka_local
from receiver.app import create_app
from receiver.publisher import KafkaPublisher
from receiver.settings import ReceiverSettings
from schemas.envelope import RawWebhook
from schemas.settings import KafkaSettings, TopicNames
from schemas.topics import ensure_topics
from tests.integration.helpers import consume, wait_until

REPO = Path(__file__).resolve().parents[2]
JSON = {"Content-Type": "application/json"}


def body(n: int) -> bytes:
    # Every body differs, and some bytes are not ASCII: compared byte for byte at the end.
    return f'{{"id":"wamid.{n:05d}","status":"delivered","note":"ação {n}"}}'.encode()


@pytest.fixture
def own_broker() -> Iterator[tuple[int, Path]]:
    """A broker of this test alone (it will be stopped and restarted): its port and data dir."""
    data_dir = Path(tempfile.mkdtemp(prefix="statusflow-outage-"))
    port = kafka_local.free_port()
    try:
        yield port, data_dir
    finally:
        kafka_local.stop(port, data_dir)
        shutil.rmtree(data_dir, ignore_errors=True)


async def post_all(http: aiohttp.ClientSession, url: str, numbers: range, sent: dict[str, bytes]) -> list[str]:
    durable = []
    for n in numbers:
        async with http.post(f"{url}/webhooks/generic", data=body(n), headers=JSON) as response:
            assert response.status == 200, await response.text()
            accepted = await response.json()
        sent[accepted["request_id"]] = body(n)
        durable.append(accepted["durable"])
    return durable


async def test_broker_stopped_mid_stream_every_acknowledged_webhook_reaches_the_raw_log(
    own_broker: tuple[int, Path], tmp_path: Path, unique_id: str
) -> None:
    port, data_dir = own_broker
    broker = await asyncio.to_thread(kafka_local.start, port=port, data_dir=data_dir, timeout=180)
    settings = ReceiverSettings(
        bootstrap_servers=broker.bootstrap,
        topics=TopicNames().prefixed(f"o{unique_id}."),
        partitions=2,
        spool_dir=tmp_path / "spool",
        publish_timeout_s=2,
    )
    await ensure_topics(settings)
    server = TestServer(create_app(settings), host="127.0.0.1")
    await server.start_server()
    url = str(server.make_url("")).rstrip("/")
    sent: dict[str, bytes] = {}
    try:
        async with aiohttp.ClientSession() as http:
            before = await post_all(http, url, range(30), sent)
            await asyncio.to_thread(broker.stop)
            during = await post_all(http, url, range(30, 60), sent)
            async with http.get(f"{url}/readyz") as ready:
                assert ready.status == 200  # the spool takes webhooks
            broker = await asyncio.to_thread(kafka_local.start, port=port, data_dir=data_dir, timeout=180)
            after = await post_all(http, url, range(60, 90), sent)

            async def drained() -> bool | None:
                async with http.get(f"{url}/metrics") as response:
                    text = await response.text()
                done = "statusflow_receiver_spool_records 0.0" in text and "statusflow_receiver_broker_up 1.0" in text
                return True if done else None

            await wait_until(drained, within=90, what="the spool drained after the broker came back")
    finally:
        await server.close()
    assert set(before) == {"kafka"}
    assert during.count("spool") >= 29  # at most the first one waited for the dead broker's deadline
    assert set(after) <= {"kafka", "spool"}

    def all_there(records: list[tuple[bytes | None, bytes]]) -> bool:
        return {k.decode() for k, _ in records if k is not None} >= set(sent)

    records = await consume(broker.bootstrap, settings.topics.raw, until=all_there, within=90)
    got = {key.decode(): RawWebhook.from_avro(value).body for key, value in records if key is not None}
    assert {request_id: got[request_id] for request_id in sent} == sent


def _receiver_env(bootstrap: str, kafka_settings: KafkaSettings, spool: Path, port: int) -> dict[str, str]:
    return {
        **os.environ,
        "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
        "STATUSFLOW_PORT": str(port),
        "STATUSFLOW_SPOOL_DIR": str(spool),
        "STATUSFLOW_PUBLISH_TIMEOUT_S": "2",
        "STATUSFLOW_PARTITIONS": str(kafka_settings.partitions),
        **{f"STATUSFLOW_TOPIC_{k.upper()}": v for k, v in kafka_settings.topics.model_dump().items()},
    }


def _start_receiver(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as handle:
        return subprocess.Popen([sys.executable, "-m", "receiver"], cwd=REPO, env=env, stdout=handle, stderr=handle)


async def _wait_healthy(http: aiohttp.ClientSession, url: str, proc: subprocess.Popen[bytes], log: Path) -> None:
    async def healthy() -> bool | None:
        if proc.poll() is not None:
            raise AssertionError(await asyncio.to_thread(log.read_text, errors="replace"))
        try:
            async with http.get(f"{url}/healthz") as response:
                return True if response.status == 200 else None
        except aiohttp.ClientConnectionError:
            return None

    await wait_until(healthy, within=60, what="the receiver process answering /healthz")


async def test_receiver_killed_with_a_full_spool_drains_it_after_restart(
    kafka_settings: KafkaSettings, tmp_path: Path
) -> None:
    await ensure_topics(kafka_settings)
    spool, log = tmp_path / "spool", tmp_path / "receiver.log"
    port = kafka_local.free_port()
    url = f"http://127.0.0.1:{port}"
    nowhere = f"127.0.0.1:{kafka_local.free_port()}"  # no broker listens there
    sent: dict[str, bytes] = {}
    async with aiohttp.ClientSession() as http:
        proc = _start_receiver(_receiver_env(nowhere, kafka_settings, spool, port), log)
        try:
            await _wait_healthy(http, url, proc, log)
            durable = await post_all(http, url, range(25), sent)
            assert set(durable) == {"spool"}
        finally:
            proc.send_signal(signal.SIGKILL)
            await asyncio.to_thread(proc.wait, 30)
        assert sum(p.stat().st_size for p in spool.rglob("*.seg")) > 0

        proc = _start_receiver(_receiver_env(kafka_settings.bootstrap_servers, kafka_settings, spool, port), log)
        try:
            await _wait_healthy(http, url, proc, log)

            def all_there(records: list[tuple[bytes | None, bytes]]) -> bool:
                return {k.decode() for k, _ in records if k is not None} >= set(sent)

            records = await consume(
                kafka_settings.bootstrap_servers, kafka_settings.topics.raw, until=all_there, within=90
            )

            async def spool_empty() -> bool | None:
                async with http.get(f"{url}/metrics") as response:
                    return True if "statusflow_receiver_spool_records 0.0" in await response.text() else None

            await wait_until(spool_empty, within=30, what="the restarted receiver's spool gauge at 0")
        finally:
            proc.terminate()  # graceful: stop accepting, finish in-flight, flush the producer
            returncode = await asyncio.to_thread(proc.wait, 30)
    got = {key.decode(): RawWebhook.from_avro(value).body for key, value in records if key is not None}
    assert {request_id: got[request_id] for request_id in sent} == sent
    assert returncode == 0, log.read_text(errors="replace")[-3000:]
    assert [p.stat().st_size for p in spool.rglob("*.seg")] == [0]


async def test_two_processes_share_one_port_with_reuse_port(kafka_settings: KafkaSettings, tmp_path: Path) -> None:
    await ensure_topics(kafka_settings)
    port = kafka_local.free_port()
    env = {**_receiver_env(kafka_settings.bootstrap_servers, kafka_settings, tmp_path / "spool", port)}
    env["STATUSFLOW_REUSE_PORT"] = "true"
    logs = [tmp_path / "a.log", tmp_path / "b.log"]
    procs = [_start_receiver(env, log) for log in logs]
    url = f"http://127.0.0.1:{port}"
    try:
        async with aiohttp.ClientSession() as http:
            for proc, log in zip(procs, logs, strict=True):
                await _wait_healthy(http, url, proc, log)

            async def both_up() -> bool | None:
                if any(p.poll() is not None for p in procs):
                    raise AssertionError("a receiver exited: " + " | ".join(x.read_text()[-500:] for x in logs))
                return True if len(list((tmp_path / "spool").glob("slot-*"))) == 2 else None

            await wait_until(both_up, within=60, what="both processes holding their own spool slot")
            sent: dict[str, bytes] = {}
            await post_all(http, url, range(10), sent)
    finally:
        for proc in procs:
            proc.terminate()
        codes = [await asyncio.to_thread(proc.wait, 30) for proc in procs]
    assert codes == [0, 0]


async def test_concurrent_publishes_share_batches_and_each_lands_once(kafka_settings: KafkaSettings) -> None:
    # Concurrent publishes share the producer's batches: each caller returns once its record is
    # acknowledged, and no record is lost or doubled.
    await ensure_topics(kafka_settings)
    publisher = KafkaPublisher(kafka_settings.bootstrap_servers, timeout_s=10)
    await publisher.start()
    sent = {f"req-{n:04d}".encode(): body(n) for n in range(600)}
    items = list(sent.items())
    try:
        for start in range(0, len(items), 75):  # rounds of 75 concurrent requests
            round_ = items[start : start + 75]
            await asyncio.gather(*(publisher.publish(kafka_settings.topics.raw, k, v) for k, v in round_))
    finally:
        await publisher.stop()
    records = await consume(
        kafka_settings.bootstrap_servers,
        kafka_settings.topics.raw,
        until=lambda rs: len(rs) >= len(sent),
        within=30,
    )
    assert sorted(records) == sorted(sent.items())
    # The raw log's load is spread over its partitions.
    reader = AIOKafkaConsumer(bootstrap_servers=kafka_settings.bootstrap_servers, group_id=None)
    await reader.start()
    try:
        partitions = [TopicPartition(kafka_settings.topics.raw, p) for p in range(kafka_settings.partitions)]
        ends = await reader.end_offsets(partitions)
    finally:
        await reader.stop()
    assert all(end > 0 for end in ends.values()), ends
