"""Every RocksDB database of a worker shares one memory budget (streams/faust_ext/rocksdb_memory.py)."""

from __future__ import annotations

import os
from pathlib import Path

from faust.stores.rocksdb import RocksDBOptions

from streams.disk_deadlines import DiskDeadlines
from streams.faust_ext.rocksdb_memory import MB, install_shared_memory


def test_faust_databases_and_expiry_indexes_fill_one_shared_budget(tmp_path: Path) -> None:
    budget = 16 * MB
    shared = install_shared_memory(budget)
    options = RocksDBOptions(write_buffer_size=4 * MB, max_write_buffer_number=2, use_rocksdict=True)
    tables = [options.open(tmp_path / f"table-{i}") for i in range(10)]
    value = os.urandom(200)
    # Ten times the budget written across ten databases: each alone could hold 2 x 4 MB of
    # memtables, together 80 MB; charged to the shared budget they flush instead (flushes run
    # in the background and the limit is soft: near the budget, far below the 80 MB).
    for n in range(800_000):
        tables[n % 10][n.to_bytes(8, "big")] = value
        if n % 8192 == 0:
            assert shared.write_buffers.get_usage() <= 1.5 * budget
    assert shared.write_buffers.get_usage() > 0  # Faust's memtables are charged to it
    for n in range(0, 800_000, 97):
        assert tables[n % 10][n.to_bytes(8, "big")] == value
    # Data, index and filter blocks read from ten databases' files share the one cache: its
    # usage stays near the budget (RocksDB's LRU cache is not a hard limit: pinned blocks).
    assert 0 < shared.cache.get_usage() <= 1.5 * budget
    expiries = DiskDeadlines(tmp_path / "expiries")
    charged = shared.write_buffers.get_usage()
    for n in range(20_000):
        expiries.set(n.to_bytes(8, "big") * 4, n)
    expiries.flush()
    assert shared.write_buffers.get_usage() > charged  # the expiry index joins the budget
    expiries.close()
    for table in tables:
        table.close()


def test_a_second_app_in_the_process_resizes_the_one_budget() -> None:
    first = install_shared_memory(16 * MB)
    second = install_shared_memory(32 * MB)
    assert second.cache is first.cache
    assert second.write_buffers.get_buffer_size() == 16 * MB
