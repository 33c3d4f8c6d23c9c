"""The worker's normalize child process: restarted when it dies, gone when the worker dies."""

from __future__ import annotations

import os
import re
import signal
from pathlib import Path

import pytest

from schemas.settings import KafkaSettings
from schemas.topics import ensure_topics
from statusflow_cli.samples import mixed_stream
from tests.integration.conftest import WorkerFactory, WorkerProcess
from tests.integration.helpers import wait_until
from tests.integration.test_pipeline import produce_raw, wait_for_table

pytestmark = pytest.mark.integration

_STARTED = re.compile(r"normalize process started \(pid (\d+)\)")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie still answers kill(0): it is dead for our purpose.
    try:
        return Path(f"/proc/{pid}/stat").read_text(encoding="ascii").split(") ", 1)[1][0] != "Z"
    except FileNotFoundError:
        return False


async def _child_pids(worker: WorkerProcess, at_least: int) -> list[int]:
    async def probe() -> list[int] | None:
        pids = [int(p) for p in _STARTED.findall(worker.log.read_text(errors="replace"))]
        return pids if len(pids) >= at_least else None

    return await wait_until(probe, within=60, what=f"{at_least} normalize process start(s) in the worker log")


async def test_a_dead_normalize_process_is_restarted_and_nothing_is_lost(
    kafka_settings: KafkaSettings, start_worker: WorkerFactory
) -> None:
    stream = mixed_stream()
    half = len(stream.webhooks) // 2
    await ensure_topics(kafka_settings)
    await produce_raw(kafka_settings, stream, stop=half)
    worker = start_worker()
    [first] = await _child_pids(worker, 1)
    os.kill(first, signal.SIGKILL)
    pids = await _child_pids(worker, 2)
    assert pids[0] == first and pids[1] != first and _alive(pids[1])
    await produce_raw(kafka_settings, stream, start=half)
    await wait_for_table(worker, stream.expected)


async def test_the_normalize_process_dies_with_a_killed_worker(
    kafka_settings: KafkaSettings, start_worker: WorkerFactory
) -> None:
    await ensure_topics(kafka_settings)
    worker = start_worker()
    [child] = await _child_pids(worker, 1)
    assert _alive(child)
    worker.kill()

    async def gone() -> bool | None:
        return True if not _alive(child) else None

    await wait_until(gone, within=30, what=f"normalize process {child} to exit after its worker was SIGKILLed")


async def test_normalize_runs_in_the_worker_loop_when_configured(
    kafka_settings: KafkaSettings, start_worker: WorkerFactory
) -> None:
    stream = mixed_stream()
    await ensure_topics(kafka_settings)
    await produce_raw(kafka_settings, stream)
    worker = start_worker(STATUSFLOW_NORMALIZE_PROCESS="false")
    await wait_for_table(worker, stream.expected)
    assert not _STARTED.search(worker.log.read_text(errors="replace"))
