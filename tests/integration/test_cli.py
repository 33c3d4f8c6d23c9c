"""The statusflow CLI against the real broker: topics and tail."""

from __future__ import annotations

import asyncio
import os
import sys

import orjson
import pytest

from schemas.settings import KafkaSettings
from statusflow_cli.samples import mixed_stream
from tests.integration.conftest import WorkerFactory
from tests.integration.test_pipeline import produce_raw

pytestmark = pytest.mark.integration


async def _cli(settings: KafkaSettings, *args: str) -> tuple[int, str]:
    env = {
        **os.environ,
        "KAFKA_BOOTSTRAP_SERVERS": settings.bootstrap_servers,
        **{f"STATUSFLOW_TOPIC_{k.upper()}": v for k, v in settings.topics.model_dump().items()},
    }
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "statusflow_cli.main", *args, env=env, stdout=asyncio.subprocess.PIPE
    )
    out, _ = await asyncio.wait_for(proc.communicate(), timeout=120)
    return proc.returncode or 0, out.decode()


async def test_topics_creates_the_contract_and_tail_prints_decoded_records(kafka_settings: KafkaSettings) -> None:
    code, out = await _cli(kafka_settings, "topics")
    assert code == 0
    assert f"{kafka_settings.topics.raw}" in out and "created" in out
    code, again = await _cli(kafka_settings, "topics")
    assert "created" not in again and "exists" in again

    stream = mixed_stream(messages_per_kind=1, repeat_all=False, prefix="cli-")
    await produce_raw(kafka_settings, stream)
    code, out = await _cli(kafka_settings, "tail", "raw", "--from-beginning", "--limit", "5")
    lines = [orjson.loads(line) for line in out.splitlines()]
    assert code == 0
    assert len(lines) == 5
    assert {line["schema"] for line in lines} == {"raw_webhook"}
    assert {line["request_id"] for line in lines} <= {w.request_id for w in stream.webhooks}


async def test_demo_posts_every_provider_and_the_worker_shows_each_expected_state(
    kafka_settings: KafkaSettings, receiver_url: str, start_worker: WorkerFactory
) -> None:
    worker = start_worker()
    code, out = await _cli(
        kafka_settings, "demo", "--url", receiver_url, "--worker-url", worker.url, "--messages", "1", "--check"
    )
    assert code == 0, out + worker.log_tail()
    assert "of 9 providers" in out
    assert "reached their expected state" in out
