"""Example consumer: print statusflow's changes, alerts, metrics and cohort funnels as JSON lines.

    KAFKA_BOOTSTRAP_SERVERS=127.0.0.1:9092 python examples/consume_all.py --from-beginning

Uses only the consumer kit (`statusflow_consumer`) and aiokafka: no schema registry. Each line
is one decoded record with its schema, topic, partition, offset and key; repeats that
at-least-once delivery may bring are dropped by their deterministic id (a cohort funnel's next
revision is news: wa.funnel is an upsert topic, whose last record per key is the truth). Topic names follow
the same STATUSFLOW_TOPIC_* variables as the pipeline.
"""

from __future__ import annotations

import argparse
import asyncio
import sys

from aiokafka import AIOKafkaConsumer

from schemas.settings import KafkaSettings
from statusflow_consumer import Deduper, decoded


async def consume(args: argparse.Namespace) -> int:
    """Read the four public topics and print one JSON line per new record."""
    settings = KafkaSettings()
    topics = [settings.topics.changes, settings.topics.alerts, settings.topics.metrics, settings.topics.funnel]
    consumer = AIOKafkaConsumer(
        *topics,
        bootstrap_servers=settings.bootstrap_servers,
        group_id=args.group,  # None: no commits, every run reads what --from-beginning says
        auto_offset_reset="earliest" if args.from_beginning else "latest",
        enable_auto_commit=args.group is not None,
    )
    await consumer.start()
    dedupe = Deduper()
    try:
        async for item in decoded(consumer, idle_polls=args.idle_polls):
            if dedupe.first_time(item):
                sys.stdout.write(item.to_json() + "\n")
                sys.stdout.flush()
    finally:
        await consumer.stop()
    return 0


def main() -> int:
    """Parse the arguments and consume until Ctrl-C (or --idle-polls empty polls)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--from-beginning", action="store_true", help="read the topics from their oldest record")
    parser.add_argument("--group", default=None, help="a consumer group to commit progress to (default: none)")
    parser.add_argument("--idle-polls", type=int, default=None, help="stop after this many empty 1 s polls")
    try:
        return asyncio.run(consume(parser.parse_args()))
    except KeyboardInterrupt:
        return 0


if __name__ == "__main__":
    raise SystemExit(main())
