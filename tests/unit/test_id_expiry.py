"""Aliases and histories kept without a state expire like the state, after a restart too.

They have no state whose expiry the retention index would rebuild from the state table, so
they get deadlines of their own: when written, and again from their own tables whenever a
partition is assigned (a restart, a rebalance). Whatever is due but was refreshed since is
scheduled again, so no entry is ever left without a deadline.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from streams.agents import _TrackIndexes
from streams.core.records import state_to_bytes
from streams.disk_deadlines import DiskDeadlines
from streams.domain.aliases import Alias
from streams.domain.deadlines import DeadlineSet
from streams.domain.history import DEAD_LETTERED, Entry, expires_at, to_bytes
from streams.domain.lattice import merge
from streams.domain.status import Status
from streams.message_ids import MessageIds
from tests.factories import status_event
from tests.fake_tables import FakeOutbox, FakeTable, fake_topology

DAY = 86_400_000
KEEP_S = 30 * 86_400
KEEP = KEEP_S * 1000
T = 1_750_000_000_000
ALIAS = b"gupshup:default:wamid.A"
LONELY = b"meta:default:wamid.dead-lettered"  # known only from a dead letter
TRACKED = b"meta:default:wamid.1"


class Worker:
    """The track stage's tables (they survive a restart: changelogs) and its in-memory parts."""

    def __init__(self, backend: Callable[[int], DeadlineSet] | None = None) -> None:
        self.t = fake_topology(retention_unfinished_s=KEEP_S, retention_finished_s=7 * 86_400)
        self.states, self.aliases, self.history = FakeTable(), FakeTable(), FakeTable()
        self._backend = backend
        self.start()

    def start(self) -> None:
        """A (re)start: nothing but the tables is kept."""
        self.indexes = _TrackIndexes(self.t.settings.retention(), self._backend)
        self.ids = MessageIds(self.t, lambda: self.states, self.indexes.of)  # type: ignore[arg-type]
        self.ids._writers = (self.aliases, self.history)  # type: ignore[assignment]

    def assign(self) -> None:
        """What the track stage's timer does once partition 0 is recovered."""
        self.indexes.sync({0}, self.states.items, self.ids.deadlines)

    def advance(self, to: int) -> list[bytes]:
        """Track a message at `to` (the stream's time moves there); the keys then due."""
        key = f"meta:default:later-{to}".encode()
        state = merge(None, status_event(Status.SENT, to, message_id=f"later-{to}"))
        self.states.data.setdefault(0, {})[key] = state_to_bytes(state)
        _, expiries = self.indexes.of(0)
        expiries.note(key, state)
        return [k for k in expiries.due() if not k.startswith(b"meta:default:later-")]

    async def expire(self, keys: list[bytes]) -> None:
        """What the retire bundle does with due keys that have no state."""
        _, expiries = self.indexes.of(0)
        for key in keys:
            assert self.states.get(0, key) is None
            await self.ids.expire(0, key, expiries.watermark, FakeOutbox())


def test_an_alias_and_a_lonely_history_expire_an_unfinished_retention_after_their_last_report() -> None:
    assert Alias("gupshup:default:gs", T).expires_at(KEEP) == T + KEEP
    history = (Entry(T + 5, "r2", "", None, None, DEAD_LETTERED), Entry(T, "r1", "", None, None, DEAD_LETTERED))
    assert expires_at(history, KEEP) == T + 5 + KEEP
    assert expires_at((), KEEP) is None


def _seed(worker: Worker) -> None:
    """Tables as a first run left them: an alias, a dead-letter-only history, a tracked message."""
    worker.aliases.data[0] = {ALIAS: Alias("gupshup:default:gs-A", T).to_bytes()}
    entry = Entry(T, "req-dl", "", None, None, DEAD_LETTERED, "bad body")
    tracked = merge(None, status_event(Status.READ, T, message_id="wamid.1"))
    worker.history.data[0] = {LONELY: to_bytes([entry]), TRACKED: to_bytes([entry])}
    worker.states.data[0] = {TRACKED: state_to_bytes(tracked)}


@pytest.fixture(params=["memory", "disk"])
def worker(request: pytest.FixtureRequest, tmp_path: Path) -> Worker:
    if request.param == "memory":
        return Worker()
    return Worker(lambda partition: DiskDeadlines(tmp_path / "retention-index" / str(partition)))


async def test_after_a_restart_aliases_and_lonely_histories_still_expire(worker: Worker) -> None:
    _seed(worker)
    worker.start()  # a restart: the index is rebuilt from the tables once the partition is assigned
    worker.assign()
    assert worker.advance(T + 7 * DAY) == [TRACKED]  # read: its state and history retire (not here)
    assert worker.advance(T + KEEP - 1) == []
    due = worker.advance(T + KEEP)
    assert sorted(due) == sorted([ALIAS, LONELY])
    await worker.expire(due)
    assert worker.aliases.data[0] == {}
    assert set(worker.history.data[0]) == {TRACKED}  # leaves with its state (the retire bundle)
    assert (0, ALIAS, None) in worker.aliases.changelog  # tombstones in the changelogs
    assert (0, LONELY, None) in worker.history.changelog


async def test_a_history_with_a_state_is_left_to_the_state(worker: Worker) -> None:
    _seed(worker)
    assert [key for key, _ in worker.ids.deadlines(0)] == [ALIAS, LONELY]


async def test_what_was_refreshed_since_it_was_scheduled_is_scheduled_again(worker: Worker) -> None:
    worker.aliases.data[0] = {ALIAS: Alias("gupshup:default:gs-A", T).to_bytes()}
    worker.assign()
    worker.aliases.data[0][ALIAS] = Alias("gupshup:default:gs-A", T + DAY).to_bytes()  # told again later
    due = worker.advance(T + KEEP)
    assert due == [ALIAS]
    await worker.expire(due)
    assert ALIAS in worker.aliases.data[0]  # not due yet: scheduled again, at its new deadline
    assert worker.advance(T + KEEP + DAY - 1) == []
    due = worker.advance(T + KEEP + DAY)
    assert due == [ALIAS]
    await worker.expire(due)
    assert worker.aliases.data[0] == {}


async def test_a_dead_letter_schedules_its_messages_history_by_its_newest_webhook(worker: Worker) -> None:
    note = {
        "message_key": LONELY.decode(),
        "request_id": "req-late",
        "received_at": T + DAY,
        "provider_status": None,
        "outcome": DEAD_LETTERED,
        "detail": "bad body",
    }
    await worker.ids.notes([note, {**note, "request_id": "req-early", "received_at": T}], 0, FakeOutbox())
    assert worker.advance(T + KEEP) == []  # the earlier webhook's deadline is not the history's
    assert worker.advance(T + DAY + KEEP) == [LONELY]
