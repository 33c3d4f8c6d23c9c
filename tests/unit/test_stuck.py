"""Messages stuck in sent are found from the time index."""

from __future__ import annotations

from streams.domain.lattice import merge
from streams.domain.status import Status
from streams.domain.stuck import StuckIndex, stuck_alert
from tests.factories import status_event

HOUR = 3_600_000


def test_only_messages_still_in_sent_past_the_age_are_due() -> None:
    index = StuckIndex()
    old = merge(None, status_event(Status.SENT, 10 * HOUR, message_id="old"))
    young = merge(None, status_event(Status.SENT, 12 * HOUR, message_id="young"))
    index.note(b"meta:old", old)
    index.note(b"meta:young", young)
    assert index.due(wall_now=12 * HOUR + 60_000, max_age_ms=HOUR) == [b"meta:old"]
    assert index.due(wall_now=12 * HOUR + 60_000, max_age_ms=HOUR) == []
    alert = stuck_alert(old, HOUR)
    assert alert is not None and alert.kind == "stuck_in_sent"
    delivered = merge(old, status_event(Status.DELIVERED, 11 * HOUR, message_id="old"))
    assert stuck_alert(delivered, HOUR) is None


def test_replaying_old_data_uses_the_streams_own_time() -> None:
    index = StuckIndex()
    index.note(b"k1", merge(None, status_event(Status.SENT, 1 * HOUR, message_id="k1")))
    index.note(b"k2", merge(None, status_event(Status.READ, 1 * HOUR + 60_000, message_id="k2")))
    # Wall clock is far ahead (a replay of last year's data): nothing is stuck in stream time.
    assert index.due(wall_now=9_000 * HOUR, max_age_ms=HOUR) == []
    index.note(b"k3", merge(None, status_event(Status.READ, 3 * HOUR, message_id="k3")))
    assert index.due(wall_now=9_000 * HOUR, max_age_ms=HOUR) == [b"k1"]


def test_messages_not_yet_sent_are_indexed_without_error() -> None:
    index = StuckIndex()
    index.note(b"k", merge(None, status_event(Status.QUEUED, 5 * HOUR, message_id="k")))
    assert len(index) == 0
    assert index.watermark == 5 * HOUR


def test_a_message_noted_many_times_comes_due_once() -> None:
    # Repeated webhooks (and the start-up seeding) note the same message in sent again and
    # again: it must come due once, or its stuck alert is published once per note.
    index = StuckIndex()
    sent = merge(None, status_event(Status.SENT, 10 * HOUR, message_id="m"))
    for _ in range(5):
        index.note(b"meta:m", sent)
    assert index.due(wall_now=11 * HOUR, max_age_ms=HOUR) == [b"meta:m"]
    assert index.due(wall_now=11 * HOUR, max_age_ms=HOUR) == []


def test_a_message_sent_again_later_comes_due_at_its_new_sent_time() -> None:
    index = StuckIndex()
    index.note(b"meta:m", merge(None, status_event(Status.SENT, 10 * HOUR, message_id="m")))
    index.note(b"meta:m", merge(None, status_event(Status.SENT, 11 * HOUR, message_id="m")))
    assert index.due(wall_now=11 * HOUR + 30 * 60_000, max_age_ms=HOUR) == []
    assert index.due(wall_now=12 * HOUR, max_age_ms=HOUR) == [b"meta:m"]


def test_a_message_that_moved_on_leaves_the_index() -> None:
    index = StuckIndex()
    for i in range(3000):
        key = f"meta:m{i}".encode()
        index.note(key, merge(None, status_event(Status.SENT, 1_000 + i, f"m{i}")))
        index.note(key, merge(None, status_event(Status.DELIVERED, 2_000 + i, f"m{i}")))
    assert len(index) == 0
    assert index.entries <= 2 * 1024  # stale entries are rebuilt away, not kept for an hour
    assert index.due(10**12, 60_000) == []
