"""The worker's consumer-lag gauge: what counts as lag, and how it is exposed."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from aiokafka import TopicPartition
from aiokafka.errors import IllegalStateError
from faust.sensors.prometheus import FaustMetrics
from faust.types import TP
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from schemas.settings import TopicNames
from streams.app import WORKER_METRICS_PREFIX
from streams.faust_ext.stall_repair import REPAIRS_COUNTER, _read_again, repairs_counter
from streams.faust_ext.stalls import Offsets
from streams.lag import LAG_GAUGE, lag_gauge, refresh
from streams.positions import LagProbe, lag_by_topic, partition_offsets, worker_groups
from streams.settings import WorkerSettings

RAW0, RAW1, EV0 = TopicPartition("raw", 0), TopicPartition("raw", 1), TopicPartition("events", 0)


def topic_lag(
    ends: dict[TopicPartition, int], committed: dict[TopicPartition, int], beginnings: dict[TopicPartition, int]
) -> dict[str, int]:
    return lag_by_topic(partition_offsets(ends, committed, beginnings))


def test_lag_is_the_distance_from_the_committed_offset_to_the_end_summed_per_topic() -> None:
    lag = topic_lag(ends={RAW0: 100, RAW1: 50, EV0: 7}, committed={RAW0: 90, RAW1: 50, EV0: 7}, beginnings={})
    assert lag == {"raw": 10, "events": 0}


def test_a_partition_never_committed_lags_by_everything_still_on_it() -> None:
    assert topic_lag(ends={RAW0: 40}, committed={}, beginnings={RAW0: 15}) == {"raw": 25}


def test_a_commit_below_the_log_start_counts_from_the_start_and_lag_is_never_negative() -> None:
    assert topic_lag(ends={RAW0: 40, RAW1: 5}, committed={RAW0: 3, RAW1: 9}, beginnings={RAW0: 30}) == {"raw": 10}


def test_the_worker_reports_its_normalize_group_on_the_raw_log_and_its_faust_group() -> None:
    settings = WorkerSettings(app_id="sf", topics=TopicNames().prefixed("p."))
    assert [(g.group, g.topics) for g in worker_groups(settings)] == [
        ("sf-normalize", ("p.wa.webhooks.raw",)),
        ("sf", ("p.wa.status.events", "p.wa.channel.signals")),
    ]


class _Measured(LagProbe):
    def __init__(self, measured: dict[tuple[str, str], int]) -> None:
        super().__init__(WorkerSettings())
        # One partition per topic, `lag` records behind its committed offset.
        self._measured: dict[str, dict[TopicPartition, Offsets]] = {}
        for (group, topic), lag in measured.items():
            self._measured.setdefault(group, {})[TopicPartition(topic, 0)] = Offsets(committed=10, end=10 + lag)

    async def measure_partitions(self) -> dict[str, dict[TopicPartition, Offsets]]:
        return self._measured


def samples(registry: CollectorRegistry) -> dict[tuple[str, str], float]:
    text = generate_latest(registry).decode()
    (family,) = [f for f in text_string_to_metric_families(text) if f.name == LAG_GAUGE]
    assert family.type == "gauge"
    return {(s.labels["group"], s.labels["topic"]): s.value for s in family.samples}


async def test_the_gauge_has_one_sample_per_group_and_topic_beside_fausts_own_metrics() -> None:
    registry = CollectorRegistry()
    gauge = lag_gauge(registry)
    FaustMetrics.create(registry, WORKER_METRICS_PREFIX)  # GET /metrics serves both from one registry
    await refresh(_Measured({("sf-normalize", "raw"): 12, ("sf", "events"): 0}), gauge)
    assert samples(registry) == {("sf-normalize", "raw"): 12.0, ("sf", "events"): 0.0}
    await refresh(_Measured({("sf-normalize", "raw"): 0, ("sf", "events"): 3}), gauge)
    assert samples(registry) == {("sf-normalize", "raw"): 0.0, ("sf", "events"): 3.0}


async def test_an_unreachable_broker_leaves_the_last_values_and_raises_nothing() -> None:
    registry = CollectorRegistry()
    gauge = lag_gauge(registry)
    await refresh(_Measured({("sf-normalize", "raw"): 7}), gauge)
    await refresh(LagProbe(WorkerSettings(bootstrap_servers="127.0.0.1:1")), gauge)
    assert samples(registry) == {("sf-normalize", "raw"): 7.0}


class _Consumer:
    def __init__(self, assigned: set[TP], error: Exception | None = None) -> None:
        self.assigned, self.error, self.seeks = assigned, error, []  # type: ignore[var-annotated]

    def assignment(self) -> set[TP]:
        return self.assigned

    async def seek_wait(self, partitions: dict[TP, int]) -> None:
        if self.error is not None:
            raise self.error
        self.seeks.append(partitions)


def _topology(consumer: _Consumer) -> Any:
    return SimpleNamespace(app=SimpleNamespace(consumer=consumer, rebalancing=False))


async def test_a_partition_taken_away_before_its_re_read_is_left_to_its_new_owner() -> None:
    # The two-worker bench: a rebalance between the lag measurement and the seek made
    # seek_wait raise IllegalStateError inside a Faust timer, which crashed the worker.
    registry = CollectorRegistry()
    repairs = repairs_counter(registry)
    tp = TP("events", 1)
    gone = _Consumer(assigned=set())
    await _read_again(_topology(gone), repairs, tp, 7)
    assert gone.seeks == []
    raced = _Consumer(assigned={tp}, error=IllegalStateError("No current assignment for partition"))
    await _read_again(_topology(raced), repairs, tp, 7)
    mine = _Consumer(assigned={tp})
    await _read_again(_topology(mine), repairs, tp, 7)
    assert mine.seeks == [{tp: 7}]
    assert registry.get_sample_value(f"{REPAIRS_COUNTER}_total", {"topic": "events"}) == 1
