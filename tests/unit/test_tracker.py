"""What the track agent publishes for each event."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.codec import codec
from streams.core.records import event_from_avro, event_to_avro, state_from_bytes, state_to_bytes
from streams.core.tracker import Outcome, state_changed, track
from streams.domain.lattice import SEEN_LIMIT
from streams.domain.status import RANKED, Status
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
    assert state_from_bytes(state.message_key.encode(), state_to_bytes(state)) == state


@settings(max_examples=500, deadline=None)
@given(
    st.lists(st.tuples(st.sampled_from(list(RANKED)), st.integers(1_000, 9_000)), min_size=1, max_size=10), st.data()
)
def test_a_repeated_event_changes_nothing_and_emits_nothing(
    reports: list[tuple[Status, int]], data: st.DataObject
) -> None:
    evs = [status_event(status, at) for status, at in reports]
    state = None
    for event in evs:
        state = track(state, event).state
    again = track(state, data.draw(st.sampled_from(evs)))
    assert again.change is None
    assert again.state.reported() == state.reported()  # type: ignore[union-attr]
    # Recognised as a repeat for sure while the bounded seen-set holds every report.
    if len({e.event_id for e in evs}) <= SEEN_LIMIT:
        assert again.outcome is Outcome.DUPLICATE
    else:
        assert again.outcome in {Outcome.DUPLICATE, Outcome.STALE}


def test_side_events_are_ignored_and_not_stored() -> None:
    before = track(None, status_event(Status.SENT, 1_000)).state
    tracked = track(before, status_event(Status.DELETED, 2_000))
    assert tracked.outcome is Outcome.IGNORED
    assert not state_changed(before, tracked)
