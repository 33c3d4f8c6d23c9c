"""The pure core of the worker: the plans of the normalize and track stages (batches), the
normalizer and tracker they fold with, the records and outputs they encode, the status filter
and the key partitioner.

Nothing here imports Faust, a Kafka or HTTP client, mode, Prometheus or RocksDB, nor reads the
clock: the wiring (streams/agents.py, streams/normalize_loop.py) passes the time in
(streams/clock.py). tests/unit/test_purity.py walks this package, streams/domain/ and
streams/adapters/ to check it. The Faust repairs live in streams/faust_ext/; the stage wiring is
the rest of streams/ (docs/architecture.md).
"""
