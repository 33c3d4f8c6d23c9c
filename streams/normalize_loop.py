"""The normalize stage: an aiokafka consumer group inside the worker, batch in, bundles out.

Faust's per-record stream machinery costs far more than normalising a webhook does (see
bench/), and wa.webhooks.raw holds one record per webhook by contract, so this stage reads
the raw log with `getmany` and writes with the producer directly. The guarantee stays
at-least-once: a batch's offsets are committed only after every record it produced is
acknowledged, and a rebalance or crash re-delivers what was not committed; every derived
record carries a deterministic id, so the repeats are harmless downstream.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.errors import CommitFailedError, IllegalStateError, KafkaError

from streams.adapters.registry import Resolver, adapter_for
from streams.clock import now_ms
from streams.core.batches import RawRecord, plan_normalize
from streams.core.outputs import Source
from streams.domain.events import StatusEvent
from streams.settings import WorkerSettings

log = logging.getLogger(__name__)


class NormalizeLoop:
    """Consume wa.webhooks.raw in batches; publish bundles, dead letters, audits and signals."""

    def __init__(
        self,
        settings: WorkerSettings,
        accept: Callable[[StatusEvent], bool] = lambda _e: True,
        resolve: Resolver = adapter_for,
        downstream_ready: Callable[[], bool] = lambda: True,
    ) -> None:
        self._settings = settings
        self._stages = (accept, resolve)
        self._downstream_ready = downstream_ready
        self.processed = 0
        self.first_processed = asyncio.Event()

    def use(self, accept: Callable[[StatusEvent], bool], resolve: Resolver) -> None:
        """A reloaded channels file's filter and adapters: from the next batch on (a batch is
        planned with one configuration, never half of each)."""
        self._stages = (accept, resolve)

    async def run(self) -> None:
        """Until cancelled."""
        s = self._settings
        consumer = AIOKafkaConsumer(
            s.topics.raw,
            bootstrap_servers=s.bootstrap_servers,
            group_id=f"{s.app_id}-normalize",
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            max_poll_records=s.normalize_batch,
            session_timeout_ms=int(s.session_timeout_s * 1000),
            heartbeat_interval_ms=int(max(s.session_timeout_s / 4, 0.5) * 1000),
            fetch_max_bytes=32 * 1024 * 1024,
            # One fetch per batch, not per record trickling in (see streams.faust_ext.commits.FetchBatching).
            fetch_min_bytes=s.fetch_min_bytes,
            fetch_max_wait_ms=s.fetch_max_wait_ms,
            max_partition_fetch_bytes=8 * 1024 * 1024,
        )
        producer = AIOKafkaProducer(
            bootstrap_servers=s.bootstrap_servers,
            acks="all",
            enable_idempotence=True,
            linger_ms=5,
            max_batch_size=512 * 1024,
            max_request_size=8 * 1024 * 1024,
        )
        await producer.start()
        await consumer.start()
        try:
            partitions = len(await producer.partitions_for(s.topics.events))
            log.info("normalize: reading %s into %s partitions of %s", s.topics.raw, partitions, s.topics.events)
            while True:
                batches = await consumer.getmany(timeout_ms=200, max_records=s.normalize_batch)
                if batches:
                    await self._linger(consumer, batches)
                    await self._process(consumer, producer, batches, partitions)
        finally:
            await consumer.stop()
            await producer.stop()

    async def _linger(
        self,
        consumer: AIOKafkaConsumer,
        batches: dict[TopicPartition, list],  # type: ignore[type-arg]
    ) -> None:
        """Live traffic arrives a few records at a time: a small batch waits up to
        `normalize_linger_ms` for more, so that one produce round trip and one commit serve
        many webhooks instead of a handful (a backlog's batches are full and never wait)."""
        s = self._settings
        taken = sum(len(batch) for batch in batches.values())
        if s.normalize_linger_ms <= 0 or taken >= s.normalize_batch // 2:
            return
        more = await consumer.getmany(timeout_ms=s.normalize_linger_ms, max_records=s.normalize_batch - taken)
        for tp, batch in more.items():
            batches.setdefault(tp, []).extend(batch)

    async def _process(
        self,
        consumer: AIOKafkaConsumer,
        producer: AIOKafkaProducer,
        batches: dict[TopicPartition, list],  # type: ignore[type-arg]
        partitions: int,
    ) -> None:
        s = self._settings
        records = [
            RawRecord(key=r.key, value=r.value, source=Source(tp.topic, tp.partition, r.offset))
            for tp, batch in batches.items()
            for r in batch
        ]
        accept, resolve = self._stages
        plan = plan_normalize(records, partitions, accept, resolve, self._settings.privacy(), at=now_ms())
        # Bundles published while this worker's Faust side is rebalancing or recovering its
        # table could be tracked into a table partition that recovery then rewrites (seen in
        # the two-worker test): hold them until the tracker is settled.
        while not self._downstream_ready():  # noqa: ASYNC110 - Faust exposes flags, not events
            await asyncio.sleep(0.05)
        sends = [
            producer.send(s.topics.events, value, key=key, partition=p) for p, key, value in plan.encoded_bundles()
        ]
        sends += [producer.send(s.topics.dlq, value, key=key) for key, value in plan.dead_letters]
        sends += [producer.send(s.topics.audit, value, key=key) for key, value in plan.audits]
        sends += [producer.send(s.topics.signals, value, key=key) for key, value in plan.signals]
        try:
            # send() only enqueues; gathering the delivery futures is the one wait per batch.
            futures = await asyncio.gather(*sends)
            await asyncio.gather(*futures)
        except KafkaError:
            log.exception("normalize batch of %s records not acknowledged; it will be re-delivered", len(records))
            raise
        # Commit only partitions still ours: after a rebalance the new owner re-reads the rest,
        # which at-least-once allows (every derived record has a deterministic id).
        assigned = consumer.assignment()
        offsets = {tp: batch[-1].offset + 1 for tp, batch in batches.items() if tp in assigned}
        try:
            if offsets:
                await consumer.commit(offsets)
        except (CommitFailedError, IllegalStateError) as exc:
            log.warning(
                "normalize: commit of %s records lost to a rebalance (%r); they will be re-read", len(records), exc
            )
        if not self.first_processed.is_set():
            log.info("normalize: first batch of %s webhooks done (%s events)", len(records), plan.events)
        self.processed += len(records)
        self.first_processed.set()
