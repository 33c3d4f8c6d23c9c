"""The spool: order, acknowledgement, bound, group commit, crash recovery (torn and corrupt tails)."""

from __future__ import annotations

import asyncio
import errno
from pathlib import Path

import pytest

from receiver import spool as spool_module
from receiver.spool import Spool, SpoolFull, SpoolUnavailable, decode_records, encode_record

MiB = 1024 * 1024


async def open_spool(root: Path, max_bytes: int = 64 * MiB, segment_bytes: int = 4096) -> Spool:
    return await Spool.open(root, max_bytes=max_bytes, segment_bytes=segment_bytes)


async def drain(spool: Spool, batch: int = 7) -> list[bytes]:
    keys: list[bytes] = []
    while spool.pending_records:
        records = await spool.read_batch(batch)
        keys += [r.key for r in records]
        await spool.ack(records)
    return keys


def test_record_round_trip_and_torn_bytes_are_not_records() -> None:
    second = encode_record("t", b"k2", b"", 1)
    data = encode_record("wa.webhooks.raw", b"k1", b"v" * 100, 1_750_000_000_000) + second
    records, used = decode_records(data, 3, 10)
    assert [(r.topic, r.key, r.value, r.appended_at_ms) for r in records] == [
        ("wa.webhooks.raw", b"k1", b"v" * 100, 1_750_000_000_000),
        ("t", b"k2", b"", 1),
    ]
    assert used == len(data)
    assert records[-1].end.segment == 3
    assert records[-1].end.offset == 10 + len(data)
    for cut in range(1, len(second) + 1):
        partial, used_partial = decode_records(data[:-cut], 0, 0)
        assert len(partial) == 1
        assert used_partial < len(data)


async def test_records_drain_in_append_order_across_segments_and_files_go_away(tmp_path: Path) -> None:
    spool = await open_spool(tmp_path)
    keys = [f"req-{i:03d}".encode() for i in range(120)]
    for key in keys:
        await spool.append("raw", key, b"x" * 200)
    assert len(list(spool.directory.glob("*.seg"))) > 3  # 4 KiB segments rolled
    assert spool.pending_records == 120
    assert spool.oldest_ms is not None
    assert await drain(spool) == keys
    assert (spool.pending_records, spool.pending_bytes, spool.oldest_ms) == (0, 0, None)
    assert [p.stat().st_size for p in spool.directory.glob("*.seg")] == [0]  # only a fresh, empty segment
    assert spool.total_bytes == 0
    await spool.close()


async def test_a_restart_finds_what_was_not_acknowledged(tmp_path: Path) -> None:
    spool = await open_spool(tmp_path)
    for i in range(50):
        await spool.append("raw", f"{i}".encode(), b"y" * 100)
    first = await spool.read_batch(20)
    await spool.ack(first[:15])  # Kafka acknowledged only 15 of the 20 read
    await spool.close()

    reopened = await open_spool(tmp_path)
    assert reopened.directory == spool.directory  # the slot is free again
    assert reopened.pending_records == 35
    assert await drain(reopened) == [f"{i}".encode() for i in range(15, 50)]
    await reopened.close()


@pytest.mark.parametrize("damage", ["torn_header", "torn_payload", "flipped_byte"])
async def test_a_torn_or_corrupt_last_record_is_truncated_on_open(tmp_path: Path, damage: str) -> None:
    spool = await open_spool(tmp_path, segment_bytes=MiB)
    for i in range(3):
        await spool.append("raw", f"{i}".encode(), b"z" * 64)
    segment = max(spool.directory.glob("*.seg"))
    await spool.close()
    good = segment.stat().st_size
    last = encode_record("raw", b"3", b"z" * 64, 1)
    with segment.open("ab") as handle:
        if damage == "torn_header":
            handle.write(last[:5])
        elif damage == "torn_payload":
            handle.write(last[:-10])
        else:
            handle.write(last[:-1] + bytes([last[-1] ^ 0xFF]))

    reopened = await open_spool(tmp_path)
    assert segment.stat().st_size == good
    assert await drain(reopened) == [b"0", b"1", b"2"]
    await reopened.close()


async def test_the_bound_refuses_records_with_spool_full(tmp_path: Path) -> None:
    spool = await open_spool(tmp_path, max_bytes=8192)
    with pytest.raises(SpoolFull):
        for i in range(100):
            await spool.append("raw", f"{i}".encode(), b"w" * 500)
    assert spool.total_bytes <= 8192
    assert not spool.usable
    await drain(spool)
    assert spool.usable
    await spool.append("raw", b"after", b"w" * 500)  # room again once drained
    await spool.close()


async def test_concurrent_appends_share_fsyncs(tmp_path: Path) -> None:
    spool = await open_spool(tmp_path, segment_bytes=MiB)
    commits: list[int] = []
    spool.on_commit = lambda records, size, seconds: commits.append(records)
    await asyncio.gather(*(spool.append("raw", f"{i}".encode(), b"c" * 300) for i in range(300)))
    assert sum(commits) == 300
    assert len(commits) < 300 / 4  # group commit: most fsyncs cover many requests
    await spool.close()
    reopened = await open_spool(tmp_path)
    assert reopened.pending_records == 300  # every acknowledged append is on disk
    await reopened.close()


async def test_a_failed_fsync_refuses_the_batch_and_leaves_no_partial_record(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spool = await open_spool(tmp_path, segment_bytes=MiB)
    await spool.append("raw", b"before", b"a")

    def no_space(fd: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(spool_module.os, "fdatasync", no_space)
    with pytest.raises(SpoolUnavailable):
        await spool.append("raw", b"lost", b"b")
    assert not spool.usable
    monkeypatch.undo()
    await spool.append("raw", b"after", b"c")
    assert spool.usable
    await spool.close()
    reopened = await open_spool(tmp_path)
    assert await drain(reopened) == [b"before", b"after"]
    await reopened.close()


async def test_each_live_process_takes_its_own_slot(tmp_path: Path) -> None:
    first = await open_spool(tmp_path)
    second = await open_spool(tmp_path)
    assert (first.directory.name, second.directory.name) == ("slot-0", "slot-1")
    await first.close()
    await second.close()


async def test_a_closed_spool_refuses(tmp_path: Path) -> None:
    spool = await open_spool(tmp_path)
    await spool.close()
    with pytest.raises(SpoolUnavailable):
        await spool.append("raw", b"k", b"v")
