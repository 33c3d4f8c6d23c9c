"""A time index of messages waiting at the provider: finds the stuck ones without scanning the table.

A message waits in a progress state: `sent` (handed to WhatsApp, not yet delivered) or, before
that, `queued`/`created` (still with the provider). Providers that never report `sent` (Vonage's
`submitted` is queued; WPP's queue and creation) only ever wait in the earlier states, so those
are watched too: a message waiting too long in `sent` is `stuck_in_sent`, one waiting too long
before it is `stuck_in_queued`.
"""

from __future__ import annotations

from streams.domain.alerting import AlertSpec
from streams.domain.clock import bounded
from streams.domain.deadlines import Deadlines
from streams.domain.lattice import MessageState
from streams.domain.status import Status

#: The alert kind of a message that stopped in each progress state.
KIND_BY_STATUS: dict[Status, str] = {
    Status.QUEUED: "stuck_in_queued",
    Status.CREATED: "stuck_in_created",
    Status.SENT: "stuck_in_sent",
}


def waiting_since(state: MessageState) -> int | None:
    """When a message entered the progress state it still waits in; None when it is not waiting."""
    status = state.status
    if status is None or status not in KIND_BY_STATUS:
        return None
    # Each kind is anchored on its own status's time, which is fixed once known: the alert is
    # the same (id and content) whatever order the reports arrive in. Queued then created is
    # two waits, two kinds (stuck_in_queued, stuck_in_created).
    return state.time_of(status)


class StuckIndex:
    """The time each waiting message entered its progress state, to find those waiting too long.

    A message leaves the index when it is noted in a final status (delivered, read, failed), so
    the index holds one entry per waiting message (streams/domain/deadlines.py). A message is
    due once per waiting time, however often it is noted (repeated webhooks, the start-up
    seeding): otherwise it would come due, and be alerted, once per note.
    """

    def __init__(self) -> None:
        self._waiting = Deadlines()
        self.watermark = 0

    def __len__(self) -> int:
        return len(self._waiting)

    @property
    def entries(self) -> int:
        """Entries held, stale ones included (bounded by about twice the waiting messages)."""
        return self._waiting.entries

    def note(self, key: bytes, state: MessageState, received_at: int | None = None) -> None:
        """Index a message whose state was just written; `received_at` (the receipt time of the
        webhooks that wrote it) bounds how far its event time may move the watermark."""
        self.watermark = max(self.watermark, bounded(state.last_event_at, received_at))
        since = waiting_since(state)
        if since is not None:
            self._waiting.set(key, since)
        else:
            self._waiting.discard(key)

    def forget(self, key: bytes) -> None:
        """The message left the table."""
        self._waiting.discard(key)

    def due(self, wall_now: int, max_age_ms: int) -> list[bytes]:
        """Keys waiting longer than `max_age_ms` (in event time while replaying old data)."""
        # Replaying history, wall-clock age would call every old message stuck: use the
        # stream's own time when it lags the clock by more than the age bound.
        now = self.watermark if wall_now - self.watermark > max_age_ms else wall_now
        return self._waiting.due(now - max_age_ms)


def stuck_alert(state: MessageState, max_age_ms: int) -> AlertSpec | None:
    """The stuck alert of a message still waiting in a progress state, else None."""
    since = waiting_since(state)
    if since is None or state.status is None:
        return None
    kind = KIND_BY_STATUS[state.status]
    where = "sent but not delivered" if kind == "stuck_in_sent" else f"still {state.status.value}, not reported sent"
    return AlertSpec(
        kind=kind,
        severity="warning",
        detail=f"{state.message_key} {where} after {max_age_ms // 60_000} min",
        occurred_at=since + max_age_ms,
        alert_key=f"{kind}:{state.message_key}",
        # The id of a stuck-in-sent alert is as before: (key, kind, sent time).
        id_parts=(state.message_key, kind, since),
        provider=state.provider,
        channel=state.channel,
        campaign=state.campaign,
        message_key=state.message_key,
    )
