"""Retention: finished messages leave after one bound, unfinished ones after a longer one."""

from __future__ import annotations

from streams.core.batches import retire_bundles
from streams.core.partitioning import key_partition
from streams.core.records import bundle_from_avro
from streams.core.tracker import expired_record
from streams.domain.deadlines import Deadlines
from streams.domain.lattice import merge
from streams.domain.retention import Retention, RetentionIndex
from streams.domain.status import FailureReason, Status
from tests.factories import status_event

DAY = 86_400_000
RETENTION = Retention(finished_ms=7 * DAY, unfinished_ms=30 * DAY)


def test_finished_and_unfinished_messages_expire_after_their_bounds() -> None:
    read = merge(merge(None, status_event(Status.SENT, 1 * DAY, "r")), status_event(Status.READ, 2 * DAY, "r"))
    failed = merge(None, status_event(Status.FAILED, 1 * DAY, "f", failure_reason=FailureReason.ERROR))
    delivered = merge(None, status_event(Status.DELIVERED, 1 * DAY, "d"))
    assert RETENTION.expiry(read) == 9 * DAY
    assert RETENTION.expiry(failed) == 8 * DAY
    assert RETENTION.expiry(delivered) == 31 * DAY


def test_index_gives_due_keys_by_the_streams_own_time_once() -> None:
    index = RetentionIndex(RETENTION)
    index.note(b"meta:d", merge(None, status_event(Status.DELIVERED, 1 * DAY, "d")))
    index.note(b"meta:r", merge(None, status_event(Status.READ, 1 * DAY, "r")))
    assert index.due() == []  # however old the data, nothing newer has been seen
    index.note(b"meta:x", merge(None, status_event(Status.SENT, 10 * DAY, "x")))
    assert index.due() == [b"meta:r"]
    index.note(b"meta:y", merge(None, status_event(Status.SENT, 40 * DAY, "y")))
    assert index.due() == [b"meta:d", b"meta:x"]
    assert index.due() == []


def test_an_event_time_far_ahead_of_its_receipt_does_not_retire_the_partition() -> None:
    index = RetentionIndex(RETENTION)
    index.note(b"meta:r", merge(None, status_event(Status.READ, 1 * DAY, "r")), received_at=1 * DAY)
    # A report dated years ahead of when it was received (a provider's clock, a forged body).
    future = merge(None, status_event(Status.READ, 5000 * DAY, "f"))
    index.note(b"meta:f", future, received_at=2 * DAY)
    assert index.watermark == 3 * DAY  # receipt time plus a day at most
    assert index.due() == []
    # Receipt times moving on retire the older message as usual.
    index.note(b"meta:x", merge(None, status_event(Status.SENT, 9 * DAY, "x")), received_at=9 * DAY)
    assert index.due() == [b"meta:r"]


def test_retire_bundles_go_to_each_keys_partition() -> None:
    keys = [f"meta:m{i}".encode() for i in range(20)]
    for partition, _key, value in retire_bundles(keys, 4):
        events, retire = bundle_from_avro(value)
        assert events == []
        assert all(key_partition(k, 4) == partition for k in retire)
    assert sorted(k for _, _, v in retire_bundles(keys, 4) for k in bundle_from_avro(v)[1]) == sorted(keys)


def test_unfinished_message_leaves_with_an_expired_change() -> None:
    delivered = merge(None, status_event(Status.DELIVERED, 1 * DAY, "d"))
    record = expired_record(delivered, 40 * DAY)
    assert (record["previous_status"], record["status"]) == ("delivered", "expired")
    assert expired_record(delivered, 41 * DAY)["change_id"] == record["change_id"]


def test_the_index_holds_about_one_entry_per_message_however_often_it_is_written() -> None:
    # Every webhook rewrites its message's state: the index must not grow with the webhooks.
    index = RetentionIndex(RETENTION)
    for write in range(50):
        for message in range(200):
            key = f"meta:m{message}".encode()
            index.note(key, merge(None, status_event(Status.DELIVERED, write * 1000 + message, f"m{message}")))
    assert isinstance(index.expiries, Deadlines)
    assert len(index.expiries) == 200
    assert index.entries <= max(1024, 2 * 200)
    # Only the latest expiry of each message counts.
    index.note(b"meta:z", merge(None, status_event(Status.SENT, 100 * DAY, "z")))
    assert sorted(index.due()) == sorted(f"meta:m{m}".encode() for m in range(200))
    assert index.due() == []


def test_a_retired_message_leaves_the_index() -> None:
    index = RetentionIndex(RETENTION)
    index.note(b"meta:r", merge(None, status_event(Status.READ, 1 * DAY, "r")))
    index.forget(b"meta:r")
    index.note(b"meta:x", merge(None, status_event(Status.SENT, 40 * DAY, "x")))
    assert isinstance(index.expiries, Deadlines)
    assert len(index.expiries) == 1
    assert index.due() == []
