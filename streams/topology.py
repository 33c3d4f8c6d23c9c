"""The Faust app, its topics and its table, built from the settings (no agents here)."""

from __future__ import annotations

import dataclasses

import faust
from aiokafka.admin import NewTopic
from faust.types import TableT, TopicT

from streams.faust_ext import install
from streams.faust_ext.rocksdb_memory import MB
from streams.settings import WorkerSettings

STATE_TABLE = "message_state"
CHANNEL_TABLE = "channel_state"
# Send-cohort rows, keyed by cohort (streams/domain/funnel.py) but stored in the partition of
# their channel's key: the channel agent, which owns that partition of wa.channel.signals,
# is their only writer, and one worker holds all of a channel's cohorts.
COHORT_TABLE = "cohort_funnel"
# One message under several ids (streams/message_ids.py): `provider:channel:alias id` → canonical key,
# on the alias's partition, so a report keyed by the alias finds it where it lands.
ALIAS_TABLE = "message_alias"
# Each message's last webhooks (streams/domain/history.py), co-partitioned with its state.
HISTORY_TABLE = "message_history"


@dataclasses.dataclass(frozen=True)
class Topology:
    """Everything the agents and views read from or write to."""

    app: faust.App
    settings: WorkerSettings
    raw: TopicT
    events: TopicT
    changes: TopicT
    dlq: TopicT
    audit: TopicT
    alerts: TopicT
    metrics: TopicT
    signals: TopicT
    funnel: TopicT
    states: TableT[bytes, bytes | None]
    channels: TableT[bytes, bytes | None]
    cohorts: TableT[bytes, bytes | None]
    aliases: TableT[bytes, bytes | None]
    history: TableT[bytes, bytes | None]


def build_topology(settings: WorkerSettings) -> Topology:
    """A Faust app with raw-bytes topics (we encode Avro ourselves, once per record), with the
    worker's Faust repairs installed (streams/faust_ext/)."""
    app = install(
        settings,
        datadir=settings.data_dir,
        topic_partitions=settings.partitions,
        topic_replication_factor=settings.replication_factor,
        key_serializer="raw",
        value_serializer="raw",
        producer_acks=-1,
        consumer_auto_offset_reset="earliest",
        broker_commit_interval=settings.commit_interval_s,
        # A worker that dies without leaving the group blocks its partitions until its session
        # expires: keep that short, so a restarted or surviving worker takes over quickly.
        broker_session_timeout=settings.session_timeout_s,
        broker_heartbeat_interval=max(settings.session_timeout_s / 4, 0.5),
        # Our stages are idempotent (deterministic ids, lattice joins): a rebalance need not
        # wait for the record in flight, which will simply be processed again.
        stream_wait_empty=False,
        producer_linger=0.005,
        producer_max_batch_size=512 * 1024,
        producer_max_request_size=8 * 1024 * 1024,
        consumer_max_fetch_size=8 * 1024 * 1024,
        web_host=settings.web_host,
        web_port=settings.web_port,
        web_bind=settings.web_host,
        web_enabled=True,
    )
    names = settings.topics
    # Faust's RocksDB defaults are sized for a dedicated host: 3 write buffers of 64 MB and a
    # 2 GB block cache per partition database. Smaller memtables, and one budget shared by every
    # database of the worker (installed with the app, streams/faust_ext/rocksdb_memory.py), bound
    # its memory by the settings.
    store_options = (
        {"write_buffer_size": settings.rocksdb_write_buffer_mb * MB, "max_write_buffer_number": 2}
        if settings.store == "rocksdb"
        else None
    )

    def topic(name: str) -> TopicT:
        return app.topic(name, key_type=bytes, value_type=bytes)

    def table(name: str) -> TableT[bytes, bytes | None]:
        # Every table: raw bytes, one partition per topic partition, the store's options.
        return app.Table(
            name,
            default=None,
            key_type=bytes,
            value_type=bytes,
            partitions=settings.partitions,
            options=store_options,
        )

    return Topology(
        app=app,
        settings=settings,
        raw=topic(names.raw),
        events=topic(names.events),
        changes=topic(names.changes),
        dlq=topic(names.dlq),
        audit=topic(names.audit),
        alerts=topic(names.alerts),
        metrics=topic(names.metrics),
        signals=topic(names.signals),
        funnel=topic(names.funnel),
        states=table(STATE_TABLE),
        channels=table(CHANNEL_TABLE),
        cohorts=table(COHORT_TABLE),
        aliases=table(ALIAS_TABLE),
        history=table(HISTORY_TABLE),
    )


def internal_topics(app: faust.App, settings: WorkerSettings) -> list[NewTopic]:
    """The topics Faust would create for itself while starting: the tables' changelogs and the
    assignor's leader topic. Creating them beforehand (and waiting for their leaders) keeps the
    first group assignment from skipping a topic the broker has not finished creating."""
    changelogs = [
        NewTopic(
            name=table.changelog_topic.get_topic_name(),
            num_partitions=settings.partitions,
            replication_factor=settings.replication_factor,
            topic_configs={"cleanup.policy": "compact"},
        )
        for table in app.tables.values()
    ]
    leader = NewTopic(
        name=f"{app.conf.id}-__assignor-__leader", num_partitions=1, replication_factor=settings.replication_factor
    )
    return [*changelogs, leader]
