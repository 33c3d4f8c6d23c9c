"""Faults of the statusflow processes on the session's broker: workers killed, joining and leaving,
paused; the receiver killed with requests in flight; every webhook delivered five times."""

from __future__ import annotations

import asyncio
import collections
import signal
import time
from collections.abc import Callable

import pytest

from schemas.codec import codec
from schemas.envelope import RawWebhook
from schemas.topics import ensure_topics
from statusflow_cli.samples import mixed_stream
from streams.core.normalizer import Normalized, normalize
from tests.chaos.harness import (
    LOADS,
    Figures,
    Load,
    Process,
    Sender,
    Stack,
    expected_alerts,
    storm,
    verify,
    wait_tracked,
)
from tests.integration.helpers import Records, metrics_text, read_topic, wait_until


@pytest.mark.parametrize("load", LOADS)
async def test_worker_killed_mid_stream_recovers_its_table_from_the_changelog(
    stack: Stack, record_figures: Callable[[Figures], None], load: Load
) -> None:
    started = time.monotonic()
    stream = load.stream(seed=21)
    await ensure_topics(stack.settings)
    receiver, worker = stack.start_receiver(), stack.start_worker()  # in-memory table: rebuilt from the changelog
    await stack.wait_healthy(receiver)
    sender = load.sender(lambda: receiver.url)
    sending = asyncio.create_task(sender.run(stream.webhooks))
    await wait_tracked(worker, sender)
    await sender.wait_acked(len(stream.webhooks) // 3)
    await worker.kill()  # SIGKILL: no commit, no flush, the table gone with the process
    killed_at = sender.acked
    await sender.wait_acked(2 * len(stream.webhooks) // 3)
    restarted_at = sender.acked
    worker = stack.restart(worker)
    deliveries = await sending
    end = await verify(
        f"worker SIGKILL + restart{load.suffix}",
        stack,
        deliveries,
        worker.url,
        started,
        expected_alerts(stream.expected),
        note=f"acknowledged at kill={killed_at} at restart={restarted_at}",
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
    # A rebalance does not wait for the record in flight (stream_wait_empty=False): it is
    # processed again by the new owner, so repeats of derived records are allowed here.
    end.check(stream.expected, repeats_allowed=True)


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
    # The audit trail shows the repeats: of the five deliveries of an event, four are duplicates
    # (or stale). Not so for Twilio, which sends no event time: each copy carries its own receipt
    # time, and a copy received earlier but tracked later moves the status's time back (a change).
    # The last audits may still be on their way: read until they are all there.
    events = sum(1 for r in map(_normalized, stream.webhooks) for e in r.events if not e.time_from_receipt)
    audit_codec = codec("audit_record")

    def track_outcomes(records: Records) -> collections.Counter[str]:
        return collections.Counter(
            a["outcome"] for a in map(audit_codec.decode, (v for _, v in records)) if a["stage"] == "track"
        )

    audits = await read_topic(
        stack.settings.bootstrap_servers,
        stack.settings.topics.audit,
        until=lambda rs: (o := track_outcomes(rs))["duplicate"] + o["stale"] >= 4 * events,
        within=60,
    )
    outcomes = track_outcomes(audits)
    end.figures.note = f"track audits {dict(sorted(outcomes.items()))}"
    record_figures(end.figures)
    end.check(stream.expected)
    assert outcomes["duplicate"] + outcomes["stale"] >= 4 * events, outcomes


def _normalized(webhook: RawWebhook) -> Normalized:
    return normalize(webhook.to_avro())


async def test_slow_consumer_paused_worker_lags_then_converges(
    stack: Stack, record_figures: Callable[[Figures], None]
) -> None:
    started = time.monotonic()
    stream = mixed_stream(messages_per_kind=3, seed=25)
    await ensure_topics(stack.settings)
    # A session longer than the pause: the paused worker keeps its partitions (a stall, not a
    # crash), and its peer's /metrics shows the group's lag growing on them.
    patient = {"STATUSFLOW_SESSION_TIMEOUT_S": "60"}
    raw = stack.settings.topics.raw  # the receiver's backlog: the lag of the normalize group
    receiver, slow = stack.start_receiver(), stack.start_worker("slow", **patient)
    await stack.wait_healthy(receiver)
    # The last quarter of the stream is held back and sent while the worker is paused: how long
    # the peer's join takes depends on the heartbeat phase (up to 15 s with this session), so a
    # paced stream could be over before the pause.
    held_back = len(stream.webhooks) // 4
    sender = Sender(lambda: receiver.url)
    sending = asyncio.create_task(sender.run(stream.webhooks[:-held_back]))
    await wait_tracked(slow, sender)
    peer = stack.start_worker("peer", **patient)
    await wait_tracked(peer, sender)
    # Pause a settled worker: one paused while it recovers its tables after the peer's join
    # does not finish recovering after SIGCONT (a Faust hang, docs/chaos.md).
    await stack.wait_ready(slow)
    await stack.wait_ready(peer)
    before = await wait_until(lambda: consumer_lag(peer, raw), within=60, what="the peer's lag gauge")
    slow.signal(signal.SIGSTOP)
    first = await sending
    later = Sender(lambda: receiver.url)
    rest = await later.run(stream.webhooks[-held_back:])
    assert later.acked == held_back  # the receiver keeps accepting while a worker is paused

    async def lag_grew() -> int | None:
        lag = await consumer_lag(peer, raw)
        return lag if lag is not None and lag >= 10 else None

    peak = await wait_until(lag_grew, within=60, what="the lag of the paused worker's partitions")
    slow.signal(signal.SIGCONT)
    deliveries = [*first, *rest]

    async def caught_up() -> int | None:
        return 0 if await consumer_lag(peer, raw) == 0 else None

    await wait_until(caught_up, within=120, what="the group's lag back to 0 after SIGCONT")
    end = await verify(
        "slow consumer (SIGSTOP)",
        stack,
        deliveries,
        slow.url,
        started,
        expected_alerts(stream.expected),
        note=f"lag before={before} while paused>={peak} after=0",
    )
    record_figures(end.figures)
    end.check(stream.expected, repeats_allowed=True)  # the peer joined mid-stream: a rebalance


async def consumer_lag(worker: Process, topic: str) -> int | None:
    """statusflow_worker_consumer_lag of `topic` on the worker's /metrics (None if unanswered)."""
    text = await metrics_text(worker.url)
    if text is None:
        return None
    samples = [
        line
        for line in text.splitlines()
        if line.startswith("statusflow_worker_consumer_lag{") and f'topic="{topic}"' in line
    ]
    return int(sum(float(line.rpartition(" ")[2]) for line in samples)) if samples else None
