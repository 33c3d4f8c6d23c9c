"""The statusflow CLI against the real broker: topics and tail."""

from __future__ import annotations

import asyncio
import os
import sys

import orjson
import pytest

from schemas.settings import KafkaSettings
from tests.integration.stream_data import mixed_stream
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
    out, _ = await asyncio.wait_for(proc.communicate(), timeout=60)
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
