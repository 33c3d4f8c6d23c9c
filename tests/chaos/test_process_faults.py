"""Faults of the statusflow processes on the session's broker: workers killed, joining and leaving,
paused; the receiver killed with requests in flight; every webhook delivered five times."""

from __future__ import annotations

import asyncio
import collections
import signal
import time
from collections.abc import Callable

import pytest

from schemas.envelope import RawWebhook
from schemas.topics import ensure_topics
from statusflow_cli.samples import mixed_stream
from streams.normalizer import Normalized, normalize
from tests.chaos.harness import Figures, Sender, Stack, expected_alerts, storm, verify, wait_tracked

pytestmark = [pytest.mark.chaos, pytest.mark.integration]


async def test_worker_killed_mid_stream_recovers_its_table_from_the_changelog(
    stack: Stack, record_figures: Callable[[Figures], None]
) -> None:
    started = time.monotonic()
    stream = mixed_stream(messages_per_kind=3, seed=21)
    await ensure_topics(stack.settings)
    receiver, worker = stack.start_receiver(), stack.start_worker()  # in-memory table: rebuilt from the changelog
    await stack.wait_healthy(receiver)
    sender = Sender(lambda: receiver.url)
    sending = asyncio.create_task(sender.run(stream.webhooks))
    await wait_tracked(worker, sender)
    await sender.wait_acked(len(stream.webhooks) // 3)
    await worker.kill()  # SIGKILL: no commit, no flush, the table gone with the process
    await sender.wait_acked(2 * len(stream.webhooks) // 3)
    worker = stack.restart(worker)
    deliveries = await sending
    end = await verify(
        "worker SIGKILL + restart", stack, deliveries, worker.url, started, expected_alerts(stream.expected)
    )
    record_figures(end.figures)
    end.check(stream.expected, repeats_allowed=True)


async def test_second_worker_joins_and_first_leaves_mid_stream(
    stack: Stack, record_figures: Callable[[Figures], None]
) -> None:
    started = time.monotonic()
    stream = mixed_stream(messages_per_kind=3, seed=22)
    await ensure_topics(stack.settings)
    receiver, first = stack.start_receiver(), stack.start_worker("first")
    await stack.wait_healthy(receiver)
    sender = Sender(lambda: receiver.url)
    sending = asyncio.create_task(sender.run(stream.webhooks))
    await wait_tracked(first, sender)
    second = stack.start_worker("second")  # joins: the group rebalances, partitions and tables move
    await sender.wait_acked(len(stream.webhooks) // 2)
    await wait_tracked(second, sender)
    await first.stop()  # leaves (SIGTERM): a second rebalance hands everything to `second`
    deliveries = await sending
    end = await verify("worker join + leave", stack, deliveries, second.url, started, expected_alerts(stream.expected))
    record_figures(end.figures)
    end.check(stream.expected)


async def test_receiver_killed_with_requests_in_flight_and_a_full_spool(
    stack: Stack, record_figures: Callable[[Figures], None]
) -> None:
    started = time.monotonic()
    stream = mixed_stream(messages_per_kind=3, seed=23)
    await ensure_topics(stack.settings)
    worker = stack.start_worker()
    # The receiver first runs without a broker, so everything it acknowledges is in its spool.
    nowhere = stack.start_receiver(KAFKA_BOOTSTRAP_SERVERS="127.0.0.1:1")
    await stack.wait_healthy(nowhere)
    sender = Sender(lambda: nowhere.url, concurrency=16)
    sending = asyncio.create_task(sender.run(stream.webhooks))
    await sender.wait_acked(len(stream.webhooks) // 3)
    spooled = sum(1 for d in sender.deliveries if d.durable == "spool")
    await nowhere.kill()  # SIGKILL with up to 16 requests in flight and a non-empty spool
    # Restarted on the same port and spool, now with the broker: the spool drains.
    stack.restart(nowhere, KAFKA_BOOTSTRAP_SERVERS=stack.settings.bootstrap_servers)
    deliveries = await sending
    assert spooled > 0
    end = await verify(
        "receiver SIGKILL + restart",
        stack,
        deliveries,
        worker.url,
        started,
        expected_alerts(stream.expected),
        note=f"spooled_before_kill={spooled}",
    )
    record_figures(end.figures)
    end.check(stream.expected)


async def test_duplicate_storm_every_webhook_five_times_concurrently(
    stack: Stack, record_figures: Callable[[Figures], None]
) -> None:
    started = time.monotonic()
    stream = mixed_stream(messages_per_kind=2, seed=24, repeat_all=False)
    await ensure_topics(stack.settings)
    receiver, worker = stack.start_receiver(), stack.start_worker()
    await stack.wait_healthy(receiver)
    sender = Sender(lambda: receiver.url, concurrency=24)
    deliveries = await sender.run(storm(stream.webhooks, copies=5, seed=24))
    end = await verify("duplicate storm x5", stack, deliveries, worker.url, started, expected_alerts(stream.expected))
    # The audit trail shows the repeats: of the five deliveries of an event, four are duplicates.
    outcomes = collections.Counter(a["outcome"] for a in end.audits if a["stage"] == "track")
    end.figures.note = f"track audits {dict(sorted(outcomes.items()))}"
    record_figures(end.figures)
    end.check(stream.expected)
    events = sum(len(r.events) for r in map(_normalized, stream.webhooks))
    assert outcomes["duplicate"] >= 4 * events - outcomes["stale"], outcomes


def _normalized(webhook: RawWebhook) -> Normalized:
    return normalize(webhook.to_avro())


async def test_slow_consumer_paused_worker_lags_then_converges(
    stack: Stack, record_figures: Callable[[Figures], None]
) -> None:
    started = time.monotonic()
    stream = mixed_stream(messages_per_kind=3, seed=25)
    await ensure_topics(stack.settings)
    receiver, worker = stack.start_receiver(), stack.start_worker()
    await stack.wait_healthy(receiver)
    sender = Sender(lambda: receiver.url)
    sending = asyncio.create_task(sender.run(stream.webhooks))
    await wait_tracked(worker, sender)
    worker.signal(signal.SIGSTOP)
    paused_at = sender.acked
    await sender.wait_acked(paused_at + len(stream.webhooks) // 3)  # the receiver keeps accepting
    worker.signal(signal.SIGCONT)
    deliveries = await sending
    end = await verify(
        "slow consumer (SIGSTOP)", stack, deliveries, worker.url, started, expected_alerts(stream.expected)
    )
    record_figures(end.figures)
    end.check(stream.expected)
