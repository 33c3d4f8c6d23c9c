"""Consumer lag of the worker's groups, a gauge on the worker's GET /metrics, measured on a timer
that also drives the repair of stalled partitions (streams/faust_ext/stall_repair.py).

Lag is measured from what the groups committed, not from one process's position
(streams/positions.py): every worker of an app reports the lag of the whole group, so a stalled
or paused worker's partitions show up on its peers' pages (the paused one answers nothing), and
the figure agrees with Kafka's own `kafka-consumer-groups --describe`.
"""

from __future__ import annotations

import logging

from aiokafka import TopicPartition
from aiokafka.errors import KafkaError
from prometheus_client import CollectorRegistry, Gauge

from streams.faust_ext.stall_repair import repair_stalled, repairs_counter
from streams.faust_ext.stalls import Offsets, StalledPartitions
from streams.faust_ext.watchdog import HangWatch
from streams.positions import LagProbe, lag_by_topic
from streams.topology import Topology

log = logging.getLogger(__name__)


LAG_GAUGE = "statusflow_worker_consumer_lag"


def lag_gauge(registry: CollectorRegistry) -> Gauge:
    """The gauge, in the registry that the worker's GET /metrics exposes."""
    return Gauge(
        LAG_GAUGE,
        "Records of a topic not yet committed by the worker's consumer group.",
        ["group", "topic"],
        registry=registry,
    )


async def refresh(probe: LagProbe, gauge: Gauge) -> dict[str, dict[TopicPartition, Offsets]] | None:
    """Measure once and set the gauge; while the broker is unreachable the last values stay."""
    try:
        measured = await probe.measure_partitions()
    except KafkaError as exc:
        log.warning("consumer lag not measured: %r", exc)
        return None
    for group, offsets in measured.items():
        for topic, lag in lag_by_topic(offsets).items():
            gauge.labels(group=group, topic=topic).set(lag)
    return measured


def register_lag(t: Topology, registry: CollectorRegistry, hangs: HangWatch | None = None) -> None:
    """Every `lag_interval_s`: refresh the lag gauge (a scrape then costs nothing), repair this
    worker's stalled partitions and feed `hangs` (with a heartbeat of the event loop)."""
    probe, gauge, repairs = LagProbe(t.settings), lag_gauge(registry), repairs_counter(registry)
    stalled = StalledPartitions(t.settings.stalled_partition_s)

    @t.app.timer(interval=t.settings.lag_interval_s)  # type: ignore[untyped-decorator]
    async def measure_consumer_lag() -> None:
        measured = await refresh(probe, gauge)
        if measured is not None:
            await repair_stalled(t, stalled, measured.get(t.settings.app_id, {}), repairs, hangs)

    if hangs is not None:

        @t.app.timer(interval=hangs.beat_every_s)  # type: ignore[untyped-decorator]
        async def beat() -> None:
            hangs.beat()
