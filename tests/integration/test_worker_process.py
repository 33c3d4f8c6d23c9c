"""The worker's normalize child process: restarted when it dies, gone when the worker dies."""

from __future__ import annotations

import os
import re
import signal
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from schemas.settings import KafkaSettings
from schemas.topics import ensure_topics
from statusflow_cli.samples import mixed_stream
from streams.app import create_app
from streams.positions import LagProbe
from streams.settings import WorkerSettings
from streams.topology import internal_topics
from tests.integration.conftest import WorkerFactory, WorkerProcess
from tests.integration.helpers import faults_pythonpath, wait_until
from tests.integration.test_pipeline import produce_raw, wait_for_table

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


async def test_a_worker_whose_recovery_hangs_restarts_itself(
    kafka_settings: KafkaSettings, start_worker: WorkerFactory, unique_id: str
) -> None:
    """A changelog ending in a transaction marker (an offset no record is ever read at) makes
    Faust wait for it forever; the watchdog replaces the process (same pid) and says why.
    (RocksDB: the memory store's bulk load reads past the marker and Faust has nothing left to
    recover, so it does not hang on this changelog at start-up.)"""
    app_id = f"statusflow-{unique_id}"  # what start_worker gives the worker
    settings = WorkerSettings(**kafka_settings.model_dump(), app_id=app_id)
    await ensure_topics(settings, internal_topics(create_app(settings), settings))
    producer = AIOKafkaProducer(bootstrap_servers=kafka_settings.bootstrap_servers, transactional_id=f"tx-{unique_id}")
    await producer.start()
    try:
        async with producer.transaction():
            await producer.send_and_wait(f"{app_id}-message_state-changelog", b"{}", key=b"meta:m1", partition=0)
    finally:
        await producer.stop()
    worker = start_worker(STATUSFLOW_RECOVERY_STALL_S="6", STATUSFLOW_STORE="rocksdb")

    async def restarted() -> bool | None:
        text = worker.log.read_text(errors="replace")
        restarts = text.count("table recovery made no progress")
        return True if restarts >= 1 and text.count("[^Worker]: Starting") >= 2 else None

    await wait_until(restarted, within=90, what="the worker to notice its stalled recovery and start again")
    assert worker.proc.poll() is None, "the worker replaced itself: its pid must still be running"


async def test_a_worker_whose_agent_stops_taking_records_restarts_itself(
    kafka_settings: KafkaSettings, start_worker: WorkerFactory, tmp_path: Path
) -> None:
    # Faust's consumer stops handing records to the agents while the process and its loop live
    # on (faust-streaming issues 175, 229, 640). Reading the partitions again does not help:
    # only a new process does. Without the hang watch the table never fills and this test fails.
    stream = mixed_stream(messages_per_kind=1, seed=12)
    await ensure_topics(kafka_settings)
    await produce_raw(kafka_settings, stream)
    marker = tmp_path / "hang-once"
    marker.touch()
    worker = start_worker(
        PYTHONPATH=faults_pythonpath(),
        STATUSFLOW_FAULT_HANG_ONCE_ON=f"{kafka_settings.topics.events}:{marker}",
        STATUSFLOW_HANG_AFTER_S="8",
        STATUSFLOW_STALLED_PARTITION_S="3",
        STATUSFLOW_LAG_INTERVAL_S="1",
    )
    await wait_for_table(worker, stream.expected)
    log = worker.log.read_text(errors="replace")
    assert "fault injection: hangs on" in log, "the fault was not injected"
    assert re.search(r"records waiting and none processed for 8s .*: restarting the worker", log), log[-3000:]
    assert log.count("[^Worker]: Starting") >= 2
    assert worker.proc.poll() is None, "the worker replaced itself: its pid must still be running"


async def test_a_record_the_consumer_skipped_is_read_again_from_the_committed_offset(
    kafka_settings: KafkaSettings, start_worker: WorkerFactory
) -> None:
    # faust-streaming can drop a record it fetched during a rebalance and never fetch it again
    # (seen in the two-worker test). Here the drop is injected into the worker's Faust consumer
    # for the first bundle: its keys only reach the table if the worker notices that the
    # partition's committed offset stays below its end and reads it again.
    stream = mixed_stream(messages_per_kind=1, seed=11)
    await ensure_topics(kafka_settings)
    await produce_raw(kafka_settings, stream)
    worker = start_worker(
        PYTHONPATH=faults_pythonpath(),
        STATUSFLOW_FAULT_SKIP_FIRST_RECORD_OF=kafka_settings.topics.events,
        STATUSFLOW_STALLED_PARTITION_S="3",
        STATUSFLOW_LAG_INTERVAL_S="1",
    )
    await wait_for_table(worker, stream.expected)
    log = worker.log.read_text(errors="replace")
    skipped = re.search(r"fault injection: skipped (\S+)\[(\d+)\]@(\d+)", log)
    assert skipped is not None, "the fault was not injected"
    topic, partition, offset = skipped.groups()
    assert f"{topic}[{partition}]: " in log
    # Read again from the committed offset: by the stall repair when nothing after it on that
    # partition was processed, or at once by the commit guard when later records were (which of
    # the two depends on how normalize batched the stream; the test below pins the second).
    assert (
        f"behind committed offset {offset} and none processed" in log
        or f"record at offset {offset} skipped while later ones were processed" in log
    ), log[-3000:]


async def _normalized_all(settings: WorkerSettings) -> None:
    """Until the worker's normalize group has committed every record of the raw log."""
    probe = LagProbe(settings)

    async def caught_up() -> bool | None:
        groups = await probe.measure_partitions()
        offsets = groups.get(f"{settings.app_id}-normalize", {})
        return True if offsets and all(where.behind == 0 for where in offsets.values()) else None

    await wait_until(caught_up, within=60, what="normalize to commit the whole raw log")


@pytest.mark.parametrize("skip_from", [0, 1], ids=["never-committed partition", "behind a committed offset"])
async def test_a_skipped_record_with_later_records_processed_is_not_committed_past(
    kafka_settings: KafkaSettings, unique_id: str, start_worker: WorkerFactory, skip_from: int
) -> None:
    # The drop of the test above, now with records behind it that the worker does process
    # (a stream that goes on after a rebalance). faust-streaming 0.15 commits past a missing
    # record when it is the first one after the committed offset (or when nothing was ever
    # committed): the skipped record would be lost for good, and no stall would show. The
    # worker's consumer holds its commits instead and reads the record again (streams/faust_ext/commits.py).
    # The stream arrives in three parts, each normalized before the next, so every partition
    # gets a record per part: the skip hits a partition's first record at `skip_from` or later.
    stream = mixed_stream(messages_per_kind=1, seed=11)
    settings = WorkerSettings(**kafka_settings.model_dump(), app_id=f"statusflow-{unique_id}")
    await ensure_topics(kafka_settings)
    worker = start_worker(
        PYTHONPATH=faults_pythonpath(),
        STATUSFLOW_FAULT_SKIP_FIRST_RECORD_OF=kafka_settings.topics.events,
        STATUSFLOW_FAULT_SKIP_FROM_OFFSET=str(skip_from),
        STATUSFLOW_STALLED_PARTITION_S="8",
        STATUSFLOW_LAG_INTERVAL_S="1",
    )
    third = len(stream.webhooks) // 3
    for start, stop in ((0, third), (third, 2 * third), (2 * third, None)):
        await produce_raw(kafka_settings, stream, start=start, stop=stop)
        await _normalized_all(settings)

    async def skip() -> tuple[str, int, int] | None:
        found = re.search(r"fault injection: skipped (\S+)\[(\d+)\]@(\d+)", worker.log.read_text(errors="replace"))
        return (found[1], int(found[2]), int(found[3])) if found else None

    topic, partition, offset = await wait_until(skip, within=60, what="the fault to be injected")
    consumer = AIOKafkaConsumer(bootstrap_servers=kafka_settings.bootstrap_servers)
    await consumer.start()
    try:
        tp = TopicPartition(topic, partition)
        end = (await consumer.end_offsets([tp]))[tp]
    finally:
        await consumer.stop()
    assert end > offset + 1, f"the stream gave no record after the skipped one in {tp} (end {end}): pick another seed"

    async def read_again() -> bool | None:
        text = worker.log.read_text(errors="replace")
        return True if f"{topic}[{partition}]: record at offset {offset} skipped while later" in text else None

    await wait_until(read_again, within=60, what=f"the worker to read {topic}[{partition}]@{offset} again")
    await wait_for_table(worker, stream.expected)
