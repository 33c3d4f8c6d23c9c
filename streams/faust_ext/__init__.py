"""The worker's repairs of faust-streaming, in one package, installed by `install`.

Each module says which faust-streaming 0.15.3 behaviour it corrects and which upstream issue
tracks it (docs/architecture.md, "The Faust repairs", says why each exists):

* commits.py: the commit guard (`Consumer._new_offset`) and the delivery loop;
* table_writes.py: direct writes to the tables' stores;
* table_store.py: the memory store loaded from its changelog in bulk;
* stalls.py and stall_repair.py: partitions stalled with records behind their committed offset;
* watchdog.py: a stalled recovery, or agents that stopped taking records, restart the worker;
* rocksdb_memory.py: one memory budget shared by every RocksDB database of the worker.

faust_version.py is imported first, before any of Faust's internals: the worker stops with a
clear message on any faust-streaming but the release the repairs are written against.
"""

from __future__ import annotations

# Before anything that touches Faust's internals (streams/faust_ext/faust_version.py).
from streams.faust_ext import faust_version  # noqa: F401

# isort: split
from typing import Any

import faust

from streams.faust_ext.commits import FetchBatching, batch_fetches
from streams.faust_ext.commits import register as register_transport
from streams.faust_ext.rocksdb_memory import MB, install_shared_memory
from streams.faust_ext.table_store import register as register_memory_store
from streams.settings import WorkerSettings


def install(settings: WorkerSettings, **options: Any) -> faust.App:
    """The worker's Faust app with every repair that changes how it runs installed: the gap-less
    commit transport, the bulk-loaded memory store (`store` "memory") or one RocksDB memory
    budget shared by every database (`store` "rocksdb"), and the fetch batching of its consumer.
    `options` are the App's other settings (streams/topology.py).

    The repairs that run beside the app are started by the wiring: the changelog preload and the
    watchdogs (streams/__main__.py), the stall repair on the lag timer (streams/lag.py)."""
    app = faust.App(
        settings.app_id,
        broker=f"{register_transport()}{settings.bootstrap_servers}",
        store=register_memory_store() if settings.store == "memory" else "rocksdb://",
        **options,
    )
    batch_fetches(app, FetchBatching(settings.fetch_min_bytes, settings.fetch_max_wait_ms))
    if settings.store == "rocksdb":
        install_shared_memory(settings.rocksdb_memory_mb * MB)
    return app
