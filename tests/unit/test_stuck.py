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


def test_messages_not_yet_sent_wait_in_their_own_progress_state() -> None:
    # Vonage's `submitted` is queued and WPP's creation is created: their messages never
    # reach `sent`, so they are watched in the state they wait in.
    index = StuckIndex()
    index.note(b"vonage:q", merge(None, status_event(Status.QUEUED, 5 * HOUR, message_id="q")))
    index.note(b"wpp:c", merge(None, status_event(Status.CREATED, 5 * HOUR + 1, message_id="c")))
    assert len(index) == 2
    assert index.watermark == 5 * HOUR + 1
    assert index.due(wall_now=6 * HOUR, max_age_ms=HOUR) == [b"vonage:q"]
    assert index.due(wall_now=6 * HOUR + 1, max_age_ms=HOUR) == [b"wpp:c"]


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


def test_a_message_stuck_before_sent_alerts_as_stuck_in_queued() -> None:
    queued = merge(None, status_event(Status.QUEUED, 10 * HOUR, message_id="v1", provider_status="submitted"))
    alert = stuck_alert(queued, HOUR)
    assert alert is not None
    assert (alert.kind, alert.alert_key, alert.occurred_at) == (
        "stuck_in_queued",
        "stuck_in_queued:meta:default:v1",
        11 * HOUR,
    )
    assert "still queued" in alert.detail
    created = merge(queued, status_event(Status.CREATED, 10 * HOUR + 5, message_id="v1"))
    again = stuck_alert(created, HOUR)
    # Queued then created: a second wait of its own kind, anchored on the created time, so each
    # (message, kind) has one alert whatever order the two reports arrive in.
    assert again is not None and (again.kind, again.occurred_at) == ("stuck_in_created", 11 * HOUR + 5)
    created_first = merge(
        merge(None, status_event(Status.CREATED, 10 * HOUR + 5, message_id="v1")),
        status_event(Status.QUEUED, 10 * HOUR, message_id="v1", provider_status="submitted"),
    )
    late_queued = stuck_alert(created_first, HOUR)
    assert late_queued is not None and late_queued.to_record() == again.to_record()
    delivered = merge(created, status_event(Status.DELIVERED, 12 * HOUR, message_id="v1"))
    assert stuck_alert(delivered, HOUR) is None


def test_a_message_that_reaches_sent_moves_from_queued_to_sent_in_the_index() -> None:
    index = StuckIndex()
    queued = merge(None, status_event(Status.QUEUED, 10 * HOUR, message_id="m"))
    index.note(b"meta:m", queued)
    index.note(b"meta:m", merge(queued, status_event(Status.SENT, 10 * HOUR + 30 * 60_000, message_id="m")))
    assert index.due(wall_now=11 * HOUR, max_age_ms=HOUR) == []  # due at the sent time, not the queued one
    assert index.due(wall_now=11 * HOUR + 30 * 60_000, max_age_ms=HOUR) == [b"meta:m"]


def test_stuck_in_sent_alert_ids_are_unchanged() -> None:
    sent = merge(None, status_event(Status.SENT, 10 * HOUR, message_id="m"))
    alert = stuck_alert(sent, HOUR)
    assert alert is not None
    assert alert.id_parts == ("meta:default:m", "stuck_in_sent", 10 * HOUR)


def test_an_event_stamped_ahead_of_receipt_does_not_drag_the_watermark() -> None:
    # Replaying: one report stamped three hours ahead would make every message sent in the
    # two hours before it "stuck" in stream time.
    index = StuckIndex()
    index.note(b"meta:a", merge(None, status_event(Status.SENT, 10 * HOUR, message_id="a")), received_at=10 * HOUR)
    ahead = merge(None, status_event(Status.READ, 13 * HOUR, message_id="b"))
    index.note(b"meta:b", ahead, received_at=10 * HOUR + 1_000)
    assert index.watermark <= 10 * HOUR + 1_000 + 60_000
    assert index.due(wall_now=9_000 * HOUR, max_age_ms=HOUR) == []


def test_a_wait_is_due_once_however_often_it_is_noted() -> None:
    index = StuckIndex()
    queued = merge(None, status_event(Status.QUEUED, 10 * HOUR, message_id="q"))
    index.note(b"meta:q", queued)
    assert index.due(wall_now=11 * HOUR, max_age_ms=HOUR) == [b"meta:q"]
    index.note(b"meta:q", queued)  # a repeated webhook
    assert index.due(wall_now=12 * HOUR, max_age_ms=HOUR) == []
