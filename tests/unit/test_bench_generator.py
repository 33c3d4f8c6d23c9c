"""The benchmark's workload generator is deterministic and folds to what the adapters say."""

from __future__ import annotations

from bench.generator import generate, reference


def test_same_seed_same_bytes() -> None:
    first, again = generate(300, seed=11), generate(300, seed=11)
    assert [w.to_avro() for w in first.webhooks] == [w.to_avro() for w in again.webhooks]


def test_other_seed_other_workload() -> None:
    assert generate(50, seed=1).webhooks != generate(50, seed=2).webhooks


def test_workload_has_the_promised_shape() -> None:
    workload = generate(2_000, seed=3)
    assert len(workload.webhooks) == 2_000
    assert workload.repeats > 0
    assert workload.late > 0
    ref = reference(workload)
    assert ref.dead_letters == 0
    assert ref.events >= len(workload.webhooks)  # Meta batches several statuses in one POST
    assert 0 < len(ref.finals) < ref.events  # several statuses per message
    assert ref.changes < ref.events  # repeats and late reports change nothing
