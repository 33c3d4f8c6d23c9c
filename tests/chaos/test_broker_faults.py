"""Faults of the broker: a single broker stopped under load, and the leader of a busy partition
of a three-node cluster killed under load. Each scenario has a broker (or cluster) of its own."""

from __future__ import annotations

import asyncio
import shutil
import tempfile
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError

from devkit import kafka_local
from schemas.topics import ensure_topics
from statusflow_cli.samples import mixed_stream
from tests.chaos.harness import (
    LOADS,
    Figures,
    Load,
    Process,
    Sender,
    expected_alerts,
    finish,
    make_stack,
    verify,
    wait_tracked,
)
from tests.integration.helpers import metrics_text, wait_until


@pytest.fixture
async def own_dir() -> AsyncIterator[Path]:
    """A directory for a broker or cluster of this test alone, removed at the end."""
    path = Path(tempfile.mkdtemp(prefix="statusflow-chaos-"))
    yield path
    await asyncio.to_thread(shutil.rmtree, path, True)


async def receiver_metric(receiver: Process, name: str) -> float | None:
    """One unlabelled sample of the receiver's /metrics (None if it does not answer)."""
    text = await metrics_text(receiver.url)
    if text is None:
        return None
    for line in text.splitlines():
        if line.startswith(f"{name} "):
            return float(line.rpartition(" ")[2])
    return None


@pytest.mark.parametrize("load", LOADS)
async def test_broker_stopped_under_load_the_spool_takes_over_and_drains(
    own_dir: Path,
    unique_id: str,
    tmp_path: Path,
    request: pytest.FixtureRequest,
    record_figures: Callable[[Figures], None],
    load: Load,
) -> None:
    port = kafka_local.free_port()
    broker = await asyncio.to_thread(kafka_local.start, port=port, data_dir=own_dir, timeout=180)
    stack = make_stack(broker.bootstrap, unique_id, tmp_path)
    try:
        started = time.monotonic()
        stream = load.stream(seed=31)
        await ensure_topics(stack.settings)
        receiver, worker = stack.start_receiver(), stack.start_worker()
        await stack.wait_healthy(receiver)
        sender = load.sender(lambda: receiver.url)
        sending = asyncio.create_task(sender.run(stream.webhooks))
        await wait_tracked(worker, sender)
        await asyncio.to_thread(broker.stop)
        # Several seconds of load without a broker: every webhook still gets its 200, from the spool.
        spooled_before = sum(1 for d in sender.deliveries if d.durable == "spool")

        async def spooling() -> int | None:
            spooled = sum(1 for d in sender.deliveries if d.durable == "spool") - spooled_before
            return spooled if spooled >= 40 else None

        spooled = await wait_until(spooling, within=120, what="40 webhooks acknowledged from the spool")
        peak = await receiver_metric(receiver, "statusflow_receiver_spool_records")
        broker = await asyncio.to_thread(kafka_local.start, port=port, data_dir=own_dir, timeout=180)
        deliveries = await sending

        async def drained() -> bool | None:
            up = await receiver_metric(receiver, "statusflow_receiver_broker_up")
            left = await receiver_metric(receiver, "statusflow_receiver_spool_records")
            return True if (up, left) == (1.0, 0.0) else None

        await wait_until(drained, within=120, what="the spool drained after the broker came back")
        end = await verify(
            f"broker stop + restart{load.suffix}",
            stack,
            deliveries,
            worker.url,
            started,
            expected_alerts(stream.expected),
            note=f"spooled={sum(d.durable == 'spool' for d in deliveries)} spool_peak={peak:.0f}",
        )
        record_figures(end.figures)
        assert spooled >= 40
        assert peak is not None and peak > 0
        # The worker lost its broker too: records it processed without committing are processed
        # again, and what it derives from them is repeated under the same ids.
        end.check(stream.expected, repeats_allowed=True)
    finally:
        await finish(stack, request)
        await asyncio.to_thread(kafka_local.stop, port, own_dir)


async def partition_leaders(bootstrap: str, topic: str, within_s: float = 60.0) -> dict[int, tuple[int, list[int]]]:
    """partition -> (leader node id, replicas).

    Right after a broker is killed the cluster still lists it until its session expires, and
    a fresh admin client may send its metadata request there (NodeNotReadyError): asked again
    until a live broker answers, within `within_s`.
    """
    deadline = time.monotonic() + within_s
    while True:
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
        try:
            await admin.start()
            (described,) = await admin.describe_topics([topic])
            return {p["partition"]: (p["leader"], p["replicas"]) for p in described["partitions"]}
        except KafkaError:
            if time.monotonic() > deadline:
                raise
        finally:
            await admin.close()
        await asyncio.sleep(0.5)  # a retry pause, not synchronisation: the loop waits for an answer


async def test_cluster_leader_of_a_busy_partition_killed_under_load(
    own_dir: Path,
    unique_id: str,
    tmp_path: Path,
    request: pytest.FixtureRequest,
    record_figures: Callable[[Figures], None],
) -> None:
    cluster = await asyncio.to_thread(kafka_local.start_cluster, 3, own_dir, None, 240)
    stack = make_stack(cluster.bootstrap, unique_id, tmp_path, replication_factor=3)
    try:
        started = time.monotonic()
        stream = mixed_stream(messages_per_kind=3, seed=32)
        await ensure_topics(stack.settings)
        receiver, worker = stack.start_receiver(), stack.start_worker()
        await stack.wait_healthy(receiver)
        sender = Sender(lambda: receiver.url)
        sending = asyncio.create_task(sender.run(stream.webhooks))
        await wait_tracked(worker, sender)
        await sender.wait_acked(len(stream.webhooks) // 3)
        raw = await partition_leaders(cluster.bootstrap, stack.settings.topics.raw)
        changelog = await partition_leaders(cluster.bootstrap, f"{stack.app_id}-message_state-changelog")
        assert {len(replicas) for _, replicas in [*raw.values(), *changelog.values()]} == {3}
        victim, _ = raw[0]  # the raw log's partition 0 takes a quarter of every webhook
        await asyncio.to_thread(cluster.kill, victim)
        deliveries = await sending

        async def moved() -> dict[int, tuple[int, list[int]]] | None:
            # The cluster names a new leader once the victim's broker session expires (5 s).
            leaders = await partition_leaders(cluster.bootstrap, stack.settings.topics.raw)
            return leaders if leaders[0][0] not in (victim, -1) else None

        after = await wait_until(moved, within=60, what=f"a new leader of raw/0 after node {victim} died")
        end = await verify(
            "cluster leader SIGKILL",
            stack,
            deliveries,
            worker.url,
            started,
            expected_alerts(stream.expected),
            note=f"killed node {victim} (leader of raw/0, now {after[0][0]})",
        )
        record_figures(end.figures)
        assert after[0][0] not in (victim, -1)
        end.check(stream.expected, repeats_allowed=True)
    finally:
        await finish(stack, request)
        await asyncio.to_thread(cluster.stop, 30)
