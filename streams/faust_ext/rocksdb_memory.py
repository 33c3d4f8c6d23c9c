"""One memory budget for every RocksDB database of a worker.

faust-streaming 0.15.3 opens a RocksDB database per table and partition and gives each its own
block cache (`RocksDBOptions.as_options` creates a new `rocksdict.Cache` for every database)
and its own memtables, with index and filter blocks outside any cache. A worker's memory then
grows with tables x partitions: five tables on four partitions are twenty databases, each
filling its own cache and memtables as traffic passes (`make soak` saw the worker grow 14 % over
the second half of 25 minutes, still far from the sum of those bounds). No upstream issue
offers a shared cache; faust-streaming's options have no setting for it.

Here every database of the worker (Faust's tables and the expiry indexes of
streams/disk_deadlines.py) shares one LRU block cache of `budget_bytes`; memtables are charged
to that cache through one write buffer manager (RocksDB flushes the largest memtable when they
pass half the budget), and index and filter blocks live in the cache too. The store's memory
is then bounded by one setting, `STATUSFLOW_ROCKSDB_MEMORY_MB`, whatever the number of tables
and partitions.

Reaches into `faust.stores.rocksdb.RocksDBOptions.as_options` (faust-streaming 0.15.3, rocksdict
driver): the replacement builds the same options as the original with the shared objects.
"""

from __future__ import annotations

import dataclasses
import threading

import rocksdict
from faust.stores import rocksdb as faust_rocksdb

MB = 1024 * 1024
_original = faust_rocksdb.RocksDBOptions.as_options


@dataclasses.dataclass(frozen=True)
class SharedMemory:
    """The block cache and write buffer manager every database of the process uses."""

    budget_bytes: int
    cache: rocksdict.Cache
    write_buffers: rocksdict.WriteBufferManager

    def table_options(self) -> rocksdict.BlockBasedOptions:
        """Block-based table options reading through the shared cache (a fresh object per
        database, as RocksDB expects; the cache inside is the shared one)."""
        options = rocksdict.BlockBasedOptions()
        options.set_block_cache(self.cache)
        # Index and filter blocks in the cache: counted in the budget instead of growing with
        # the number of files. The first level's stay pinned: the hot path reads them always.
        options.set_cache_index_and_filter_blocks(True)
        options.set_pin_l0_filter_and_index_blocks_in_cache(True)
        return options

    def apply(self, options: rocksdict.Options) -> None:
        """Make a database's options use the shared budget."""
        options.set_write_buffer_manager(self.write_buffers)


_lock = threading.Lock()
_shared: SharedMemory | None = None


def shared_memory(budget_bytes: int) -> SharedMemory:
    """The process's shared budget, created on first use; a later call with another size
    resizes it (apps built again in one process, as tests do)."""
    global _shared  # noqa: PLW0603 - one cache per process is the point
    with _lock:
        if _shared is None:
            cache = rocksdict.Cache(budget_bytes)
            # Memtables may take up to half of the budget before RocksDB flushes; no stall.
            manager = rocksdict.WriteBufferManager.new_write_buffer_manager_with_cache(budget_bytes // 2, False, cache)
            _shared = SharedMemory(budget_bytes, cache, manager)
        elif _shared.budget_bytes != budget_bytes:
            _shared.cache.set_capacity(budget_bytes)
            _shared.write_buffers.set_buffer_size(budget_bytes // 2)
            _shared = dataclasses.replace(_shared, budget_bytes=budget_bytes)
        return _shared


def installed() -> SharedMemory | None:
    """The budget `install_shared_memory` set up in this process, if any (the expiry indexes
    join it when there is one)."""
    return _shared


def install_shared_memory(budget_bytes: int) -> SharedMemory:
    """Make every RocksDB database Faust opens in this process share one memory budget."""
    shared = shared_memory(budget_bytes)

    def as_options(self: faust_rocksdb.RocksDBOptions) -> rocksdict.Options:
        if not self.use_rocksdict:  # python-rocksdb: not installed by statusflow, left as it is
            fallback: rocksdict.Options = _original(self)
            return fallback
        options = rocksdict.Options(raw_mode=True)
        options.create_if_missing(True)
        if self.max_open_files is not None:
            options.set_max_open_files(self.max_open_files)
        options.set_write_buffer_size(self.write_buffer_size)
        options.set_target_file_size_base(self.target_file_size_base)
        options.set_max_write_buffer_number(self.max_write_buffer_number)
        table = shared.table_options()
        table.set_bloom_filter(self.bloom_filter_size, block_based=True)
        table.set_index_type(rocksdict.BlockBasedIndexType.binary_search())
        options.set_block_based_table_factory(table)
        shared.apply(options)
        return options

    faust_rocksdb.RocksDBOptions.as_options = as_options  # type: ignore[method-assign]
    return shared
