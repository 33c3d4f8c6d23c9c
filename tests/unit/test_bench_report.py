"""make bench's table and goals name the peer and both ceilings (bench/report.py)."""

from __future__ import annotations

from typing import Any

from bench.report import goals, rows


def _run(rate: float) -> dict[str, Any]:
    return {"webhooks_per_s": rate, "start_to_first_s": 2.0}


def _results(pipeline: float, quix: float) -> dict[str, Any]:
    return {
        "pipeline": {
            "raw": _run(30_000),
            "raw_confluent": _run(40_000),
            "pipeline": _run(pipeline),
            "naive": _run(800),
            "quix": _run(quix),
            "ratio_pipeline_raw": pipeline / 30_000,
            "ratio_pipeline_quix": pipeline / quix,
        }
    }


def test_the_table_shows_the_quix_peer_and_both_ceilings() -> None:
    labels = [row[1] for row in rows(_results(12_000, 6_000))]
    assert "raw aiokafka pass-through" in labels
    assert "raw confluent-kafka pass-through" in labels
    assert any(label.startswith("Quix Streams peer") for label in labels)


def test_the_peer_goal_is_twice_its_throughput() -> None:
    def met(pipeline: float, quix: float) -> bool:
        (goal,) = [g for g in goals(_results(pipeline, quix)) if g["name"] == "pipeline vs the Quix Streams peer"]
        return bool(goal["met"])

    assert met(12_000, 6_000)
    assert not met(11_000, 6_000)


def test_a_peer_that_did_not_finish_is_not_a_met_goal() -> None:
    results = _results(12_000, 6_000)
    del results["pipeline"]["ratio_pipeline_quix"]
    (goal,) = [g for g in goals(results) if g["name"] == "pipeline vs the Quix Streams peer"]
    assert not goal["met"]
