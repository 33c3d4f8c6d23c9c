"""Topic layout and the readiness check that keeps a new group from skipping a fresh topic."""

from __future__ import annotations

from schemas.settings import KafkaSettings
from schemas.topics import TOPIC_CONFIGS, TOPIC_PARTITIONS, leaderless, topic_specs
from streams.app import create_app
from streams.settings import WorkerSettings
from streams.topology import internal_topics


def _described(topic: str, leaders: list[int], error_code: int = 0) -> dict[str, object]:
    return {
        "topic": topic,
        "error_code": error_code,
        "partitions": [{"partition": i, "leader": leader, "error_code": 0} for i, leader in enumerate(leaders)],
    }


def test_topics_with_a_leader_for_every_partition_are_ready() -> None:
    assert leaderless([_described("a", [1, 1, 2]), _described("b", [3])]) == []


def test_unknown_topics_and_leaderless_partitions_are_waited_for() -> None:
    descriptions = [
        _described("ready", [1, 1]),
        _described("electing", [1, -1]),
        _described("unknown", [], error_code=3),
        {"topic": "no-partitions-yet", "error_code": 0, "partitions": []},
        {"topic": "partition-error", "error_code": 0, "partitions": [{"partition": 0, "leader": 1, "error_code": 5}]},
    ]
    assert leaderless(descriptions) == ["electing", "unknown", "no-partitions-yet", "partition-error"]


def test_every_contract_topic_is_created_with_the_configured_partitions() -> None:
    settings = KafkaSettings(partitions=6, replication_factor=3)
    specs = topic_specs(settings)
    assert {s.name for s in specs} == set(settings.topics.model_dump().values())
    assert len(specs) == len(TOPIC_CONFIGS)
    assert all(s.replication_factor == 3 for s in specs)
    fixed = {getattr(settings.topics, role): count for role, count in TOPIC_PARTITIONS.items()}
    assert fixed == {"wa.alerts.parked": 1}  # what the notifier has always created it with
    assert all(s.num_partitions == fixed.get(s.name, 6) for s in specs)


def test_the_worker_creates_faust_changelogs_and_leader_topic_ahead_of_faust() -> None:
    settings = WorkerSettings(app_id="sf-test", partitions=8, replication_factor=1)
    app = create_app(settings)
    specs = {s.name: s for s in internal_topics(app, settings)}
    assert set(specs) == {
        "sf-test-message_state-changelog",
        "sf-test-channel_state-changelog",
        "sf-test-cohort_funnel-changelog",
        "sf-test-message_alias-changelog",
        "sf-test-message_history-changelog",
        "sf-test-__assignor-__leader",
    }
    # The changelogs are what Faust would create: compacted and co-partitioned with the input.
    for table in app.tables.values():
        spec = specs[table.changelog_topic.get_topic_name()]
        assert spec.num_partitions == 8
        assert spec.topic_configs == {"cleanup.policy": "compact"}
    assert specs["sf-test-__assignor-__leader"].num_partitions == 1
