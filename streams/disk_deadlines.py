"""Deadlines kept on disk (RocksDB), for indexes that must not grow a worker's memory.

With the RocksDB table store a message's state lives on disk for its whole retention; an
in-memory index of its expiry would still cost about 250 bytes of RAM per message (a week of
traffic: gigabytes). Here the index is a RocksDB database of its own per partition, keyed by
the deadline (8 bytes, big-endian, so keys sort by time) and the message key, next to the
table's databases. It is derived data: not changelogged, rebuilt from the table whenever the
partition is assigned (the caller seeds it), removed when the partition leaves.

A key's earlier deadlines are not looked up and removed when it gets a new one (that would be a
read per write); they stay until they come due, and the caller re-checks each due key against
its current state anyway (streams/agents.py, _retire).
"""

from __future__ import annotations

import shutil
import struct
from pathlib import Path

from rocksdict import Options, Rdict, WriteBatch

from streams.faust_ext.rocksdb_memory import installed

_DEADLINE = struct.Struct(">Q")
# Small buffers: this database holds 8 bytes plus a key per message and is read in order.
_WRITE_BUFFER = 4 * 1024 * 1024


class DiskDeadlines:
    """Keys with deadlines, in a RocksDB database at `path` (created empty)."""

    def __init__(self, path: Path) -> None:
        shutil.rmtree(path, ignore_errors=True)  # derived data: always rebuilt from the table
        path.parent.mkdir(parents=True, exist_ok=True)
        options = Options(raw_mode=True)
        options.create_if_missing(True)
        options.set_write_buffer_size(_WRITE_BUFFER)
        options.set_max_write_buffer_number(2)
        shared = installed()
        if shared is not None:  # the worker's one RocksDB budget (streams/faust_ext/rocksdb_memory.py)
            options.set_block_based_table_factory(shared.table_options())
            shared.apply(options)
        self._path = path
        self._db = Rdict(str(path), options)
        self._pending = WriteBatch(raw_mode=True)
        self._written = 0

    @property
    def entries(self) -> int:
        """Entries written since the database was created (RocksDB's count is an estimate)."""
        return self._written

    def set(self, key: bytes, deadline: int) -> None:
        """Give `key` this deadline (any earlier one stays until it is due)."""
        self._pending.put(_DEADLINE.pack(max(deadline, 0)) + key, b"")
        self._written += 1

    def discard(self, key: bytes) -> None:
        """Nothing to do: the entries of a key that left are dropped when they come due."""

    def due(self, now: int) -> list[bytes]:
        """Keys with a deadline <= `now`, earliest first (a key once per due entry); they leave."""
        self.flush()
        due: list[bytes] = []
        if now < 0:
            return due
        bound = _DEADLINE.pack(now + 1)
        it = self._db.iter()
        it.seek_to_first()
        batch = WriteBatch(raw_mode=True)
        while it.valid():
            entry = it.key()
            if entry >= bound:
                break
            due.append(entry[_DEADLINE.size :])
            batch.delete(entry)
            it.next()
        del it
        if due:
            self._db.write(batch)
        return due

    def flush(self) -> None:
        """Write what was set since the last flush (done before every `due`)."""
        if len(self._pending):
            self._db.write(self._pending)
            self._pending = WriteBatch(raw_mode=True)

    def close(self, *, remove: bool = True) -> None:
        """Close the database (and remove it: it is rebuilt when the partition returns)."""
        self.flush()
        self._db.close()
        if remove:
            Rdict.destroy(str(self._path))
            shutil.rmtree(self._path, ignore_errors=True)
