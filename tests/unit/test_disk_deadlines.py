"""Expiries on disk beside a RocksDB table: due keys come out in deadline order, once per entry."""

from __future__ import annotations

from pathlib import Path

from streams.disk_deadlines import DiskDeadlines
from streams.domain.lattice import merge
from streams.domain.retention import Retention, RetentionIndex
from streams.domain.status import Status
from tests.factories import status_event

DAY = 86_400_000


def test_due_keys_come_out_by_deadline_and_leave(tmp_path: Path) -> None:
    deadlines = DiskDeadlines(tmp_path / "p0")
    deadlines.set(b"meta:a", 30)
    deadlines.set(b"meta:b", 10)
    deadlines.set(b"meta:c", 20)
    assert deadlines.due(9) == []
    assert deadlines.due(20) == [b"meta:b", b"meta:c"]
    assert deadlines.due(100) == [b"meta:a"]
    assert deadlines.due(100) == []
    deadlines.close()
    assert not (tmp_path / "p0").exists()


def test_a_retention_index_on_disk_retires_what_the_in_memory_one_does(tmp_path: Path) -> None:
    retention = Retention(finished_ms=7 * DAY, unfinished_ms=30 * DAY)
    on_disk = RetentionIndex(retention, DiskDeadlines(tmp_path / "p1"))
    in_memory = RetentionIndex(retention)
    writes = [
        (b"meta:d", merge(None, status_event(Status.DELIVERED, 1 * DAY, "d"))),
        (b"meta:r", merge(None, status_event(Status.READ, 1 * DAY, "r"))),
        (b"meta:x", merge(None, status_event(Status.SENT, 10 * DAY, "x"))),
        (b"meta:y", merge(None, status_event(Status.SENT, 40 * DAY, "y"))),
    ]
    for key, state in writes:
        on_disk.note(key, state)
        in_memory.note(key, state)
    # The on-disk index may repeat a key whose expiry moved; the tracker re-checks each one.
    assert sorted(set(on_disk.due())) == sorted(in_memory.due()) == [b"meta:d", b"meta:r", b"meta:x"]


def test_a_new_index_starts_empty_whatever_the_directory_held(tmp_path: Path) -> None:
    first = DiskDeadlines(tmp_path / "p2")
    first.set(b"meta:old", 1)
    first.flush()
    first.close(remove=False)
    # Derived data: a worker that gets the partition again seeds it from the table.
    assert DiskDeadlines(tmp_path / "p2").due(10**15) == []
