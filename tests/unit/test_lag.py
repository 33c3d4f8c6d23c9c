"""The worker's consumer-lag gauge: what counts as lag, and how it is exposed."""

from __future__ import annotations

from aiokafka import TopicPartition
from prometheus_client.parser import text_string_to_metric_families

from schemas.settings import TopicNames
from streams.lag import LagProbe, topic_lag, worker_groups
from streams.settings import WorkerSettings

RAW0, RAW1, EV0 = TopicPartition("raw", 0), TopicPartition("raw", 1), TopicPartition("events", 0)


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
        self._measured = measured

    async def measure(self) -> dict[tuple[str, str], int]:
        return self._measured


async def test_the_exposition_has_one_gauge_sample_per_group_and_topic() -> None:
    text = (await _Measured({("sf-normalize", "raw"): 12, ("sf", "events"): 0}).exposition()).decode()
    (family,) = [f for f in text_string_to_metric_families(text) if f.name == "statusflow_worker_consumer_lag"]
    assert family.type == "gauge"
    assert {(s.labels["group"], s.labels["topic"]): s.value for s in family.samples} == {
        ("sf-normalize", "raw"): 12.0,
        ("sf", "events"): 0.0,
    }


async def test_an_unreachable_broker_gives_a_gauge_without_samples_not_an_error() -> None:
    probe = LagProbe(WorkerSettings(bootstrap_servers="127.0.0.1:1"))
    text = (await probe.exposition()).decode()
    assert "# TYPE statusflow_worker_consumer_lag gauge" in text
    assert "statusflow_worker_consumer_lag{" not in text
