"""What the track agent publishes for each event."""

from __future__ import annotations

from schemas.codec import codec
from streams.domain.status import Status
from streams.records import event_from_avro, event_to_avro, state_from_bytes, state_to_bytes
from streams.tracker import Outcome, track
from tests.factories import status_event


def test_first_event_is_a_change_from_nothing() -> None:
    tracked = track(None, status_event(Status.SENT, 1_000))
    assert tracked.outcome is Outcome.CHANGED
    assert tracked.change is not None
    assert tracked.change["previous_status"] is None
    assert tracked.change["status"] == "sent"
    codec("status_change").decode(codec("status_change").encode(tracked.change))


def test_same_report_again_is_a_duplicate_without_change() -> None:
    first = track(None, status_event(Status.DELIVERED, 2_000))
    again = track(first.state, status_event(Status.DELIVERED, 2_000))
    assert again.outcome is Outcome.DUPLICATE
    assert again.change is None


def test_lower_status_arriving_late_is_stale_but_still_records_its_time() -> None:
    read = track(None, status_event(Status.READ, 5_000)).state
    late_sent = track(read, status_event(Status.SENT, 1_000))
    # The sent time is new information even though the status stays read.
    assert late_sent.outcome is Outcome.CHANGED
    assert late_sent.state.status is Status.READ
    later_sent = track(late_sent.state, status_event(Status.SENT, 3_000))
    assert later_sent.outcome is Outcome.STALE


def test_change_id_is_deterministic_per_state() -> None:
    a = track(None, status_event(Status.SENT, 1_000)).change
    b = track(None, status_event(Status.SENT, 1_000)).change
    c = track(None, status_event(Status.SENT, 1_001)).change
    assert a is not None and b is not None and c is not None
    assert a["change_id"] == b["change_id"] != c["change_id"]


def test_wire_formats_round_trip() -> None:
    event = status_event(Status.FAILED, 7_000, campaign="c")
    assert event_from_avro(event_to_avro(event)) == event
    state = track(None, event).state
    assert state_from_bytes(state_to_bytes(state)) == state
