"""A time index of messages waiting in `sent`: finds the stuck ones without scanning the table."""

from __future__ import annotations

from streams.domain.alerting import AlertSpec
from streams.domain.deadlines import Deadlines
from streams.domain.lattice import MessageState
from streams.domain.status import Status


class StuckIndex:
    """The sent time of each message last seen in `sent`, to find those sent too long ago.

    A message leaves the index when it is noted in another status, so the index holds one
    entry per message waiting in `sent` (streams/domain/deadlines.py). A message is due once
    per sent time, however often it is noted (repeated webhooks, the start-up seeding):
    otherwise it would come due, and be alerted, once per note.
    """

    def __init__(self) -> None:
        self._sent = Deadlines()
        self.watermark = 0

    def __len__(self) -> int:
        return len(self._sent)

    @property
    def entries(self) -> int:
        """Entries held, stale ones included (bounded by about twice the messages in sent)."""
        return self._sent.entries

    def note(self, key: bytes, state: MessageState) -> None:
        """Index a message whose state was just written."""
        self.watermark = max(self.watermark, state.last_event_at)
        if state.status is Status.SENT and state.sent_at is not None:
            self._sent.set(key, state.sent_at)
        else:
            self._sent.discard(key)

    def forget(self, key: bytes) -> None:
        """The message left the table."""
        self._sent.discard(key)

    def due(self, wall_now: int, max_age_ms: int) -> list[bytes]:
        """Keys sent longer than `max_age_ms` ago (in event time while replaying old data)."""
        # Replaying history, wall-clock age would call every old message stuck: use the
        # stream's own time when it lags the clock by more than the age bound.
        now = self.watermark if wall_now - self.watermark > max_age_ms else wall_now
        return self._sent.due(now - max_age_ms)


def stuck_alert(state: MessageState, max_age_ms: int) -> AlertSpec | None:
    """The stuck-in-sent alert of a message still in `sent`, else None."""
    if state.status is not Status.SENT or state.sent_at is None:
        return None
    return AlertSpec(
        kind="stuck_in_sent",
        severity="warning",
        detail=f"{state.message_key} sent but not delivered after {max_age_ms // 60_000} min",
        occurred_at=state.sent_at + max_age_ms,
        alert_key=f"stuck_in_sent:{state.message_key}",
        id_parts=(state.message_key, "stuck_in_sent", state.sent_at),
        provider=state.provider,
        channel=state.channel,
        campaign=state.campaign,
        message_key=state.message_key,
    )
