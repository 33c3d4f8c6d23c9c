"""The track stage's aliases and histories: one message under all its ids, and its webhooks.

Messages are partitioned by key, and a report keyed by an alias (Gupshup: WhatsApp's id, after
`gsId` stopped coming) lands on the alias's partition, not the message's. So the correlation is
kept where such a report lands, in the alias table (`provider:channel:alias id` → canonical key, a
changelogged table co-partitioned with wa.status.events), and everything moves by re-keying
through wa.status.events:

1. A report that carries both ids is tracked under the canonical key; the tracker then sends an
   *alias* record to the alias's partition.
2. There the alias is recorded. If a report keyed by the alias was tracked before (it arrived
   first), its state and history are sent to the canonical partition as a *merge* and deleted
   under the alias.
3. A merge joins the state (lattice join) and the history (union) into the canonical key. The
   send-cohort funnel follows: step 2 deducts the alias state's cohort counts, step 3 replaces
   the canonical state's counts with the joined state's (`moved_signals`), so the message
   counts once, whichever half reaches its channel's cohort row first.
4. A later report keyed by the alias finds the alias on its own partition and is re-keyed to
   the canonical message and sent to its partition, where it is tracked as any other report.

Every step is idempotent and commutative (a re-delivered alias, merge or report changes nothing
twice), so any arrival order and any crash or rebalance between steps ends in one state under
the canonical key, which GET /messages answers for every id. The tables survive restarts and
rebalances through their changelogs.

Aliases, and histories of messages known only from dead letters, have no state whose expiry
would retire them: each gets a deadline of its own in the partition's retention index when
written, and again from its table whenever the partition is assigned (`deadlines`), so they
expire after a restart too; a due key refreshed since is scheduled again (`expire`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Iterator
from typing import Any, Protocol

from schemas.codec import codec
from streams.core.batches import moved_signals
from streams.core.partitioning import key_partition
from streams.core.records import event_to_record, state_from_bytes, state_to_bytes
from streams.core.tracker import moved_record
from streams.domain.aliases import Alias, alias_told, may_be_alias, move, rekey
from streams.domain.events import StatusEvent, parse_message_key
from streams.domain.history import Entry, add, expires_at, from_bytes, to_bytes
from streams.domain.lattice import MessageState
from streams.domain.retention import RetentionIndex
from streams.domain.stuck import StuckIndex
from streams.faust_ext.table_writes import TableWriter
from streams.topology import Topology

Indexes = Callable[[int], tuple[StuckIndex, RetentionIndex]]
Encoded = tuple[int, bytes, bytes]


class Delivery(Protocol):
    """Where this module's outputs go: the agents' Outbox (streams/agents.py)."""

    def add(self, delivery: Awaitable[object]) -> None:
        """Track a delivery to await with the batch's other outputs."""


def note_entry(note: dict[str, Any]) -> Entry:
    """The history entry of a HistoryNote (a dead letter whose message id was read)."""
    return Entry(
        received_at=note["received_at"],
        request_id=note["request_id"],
        event_id="",
        provider_status=note["provider_status"],
        status=None,
        outcome=note["outcome"],
        detail=note["detail"],
    )


class _Bundles:
    """Bundles for wa.status.events, one per partition of their keys."""

    def __init__(self, partitions: int) -> None:
        self._partitions = partitions
        self._parts: dict[int, tuple[str, dict[str, list[Any]]]] = {}

    def add(self, key: str, part: str, item: Any) -> None:
        partition = key_partition(key.encode(), self._partitions)
        found = self._parts.get(partition)
        if found is None:
            found = self._parts[partition] = (key, {"events": [], "aliases": [], "merges": [], "notes": []})
        found[1][part].append(item)

    def encoded(self) -> list[Encoded]:
        bundle_codec = codec("status_event_bundle")
        return [(p, key.encode(), bundle_codec.encode(parts)) for p, (key, parts) in self._parts.items()]


class MessageIds:
    """Aliases and histories of the messages of the track stage's partitions."""

    def __init__(self, t: Topology, states: Callable[[], TableWriter], indexes: Indexes) -> None:
        self._t = t
        self._states = states
        self._indexes = indexes
        self._limit = t.settings.history_limit
        self._keep_ms = t.settings.retention_unfinished_s * 1000
        self._cohort_ms = t.settings.cohort_s * 1000
        self._writers: tuple[TableWriter, TableWriter] | None = None

    @property
    def _tables(self) -> tuple[TableWriter, TableWriter]:
        # The producer exists once the app has started: make the writers at first use.
        if self._writers is None:
            self._writers = (TableWriter(self._t.app, self._t.aliases), TableWriter(self._t.app, self._t.history))
        return self._writers

    async def route(
        self, events: list[StatusEvent], notes: list[dict[str, Any]], partition: int, outbox: Delivery
    ) -> tuple[list[StatusEvent], list[dict[str, Any]]]:
        """The events and notes to track here; those keyed by a known alias are re-keyed and
        sent to their canonical message's partition."""
        aliases, _ = self._tables
        out = _Bundles(self._t.settings.partitions)
        kept_events: list[StatusEvent] = []
        for event in events:
            # Only reports of a several-ids provider that name one id may be keyed by an alias.
            maybe = may_be_alias(event.provider, event.message_id, event.correlation_id)
            canonical = self._canonical(aliases, partition, event.message_key) if maybe else None
            if canonical is None:
                kept_events.append(event)
            else:
                out.add(canonical, "events", event_to_record(rekey(event, canonical)))
        kept_notes: list[dict[str, Any]] = []
        for note in notes:
            key = str(note["message_key"])
            provider, _, message_id = parse_message_key(key)
            canonical = self._canonical(aliases, partition, key) if may_be_alias(provider, message_id, None) else None
            if canonical is None:
                kept_notes.append(note)
            else:
                out.add(canonical, "notes", {**note, "message_key": canonical})
        await self._send(out, outbox)
        return kept_events, kept_notes

    @staticmethod
    def _canonical(aliases: TableWriter, partition: int, key: str) -> str | None:
        """The canonical key `key` is an alias of, when the alias is known on this partition."""
        value = aliases.get(partition, key.encode())
        return Alias.from_bytes(value).canonical if value is not None else None

    async def tell(self, events: Iterable[StatusEvent], outbox: Delivery) -> None:
        """Send each alias these tracked events told to the alias's partition.

        Sent for every report that carries both ids, not only the first: a crash after the
        state was written but before the alias was delivered must not lose the alias."""
        told: dict[str, tuple[str, int]] = {}
        for event in events:
            alias = alias_told(event)
            if alias is not None:
                _, at = told.get(alias, ("", 0))
                told[alias] = (event.message_key, max(at, event.occurred_at))
        out = _Bundles(self._t.settings.partitions)
        for alias, (canonical, at) in told.items():
            out.add(alias, "aliases", {"alias": alias, "canonical": canonical, "at": at})
        await self._send(out, outbox)

    async def record(self, told: list[dict[str, Any]], partition: int, outbox: Delivery) -> None:
        """Record aliases on their partition; whatever was tracked under one moves to its message."""
        aliases, history = self._tables
        states = self._states()
        out = _Bundles(self._t.settings.partitions)
        left: list[tuple[MessageState | None, MessageState | None]] = []
        for item in told:
            key = str(item["alias"]).encode()
            current = aliases.get(partition, key)
            alias = (
                Alias(item["canonical"], item["at"])
                if current is None
                else Alias.from_bytes(current).refreshed(item["at"])
            )
            if current is None or alias.to_bytes() != current:
                outbox.add(await aliases.set(partition, key, alias.to_bytes()))
            state, past = states.get(partition, key), history.get(partition, key)
            if state is not None or past is not None:
                merge = {"message_key": alias.canonical, "alias": item["alias"], "state": state, "history": past}
                out.add(alias.canonical, "merges", merge)
                if state is not None:
                    outbox.add(await states.delete(partition, key))
                    left.append((state_from_bytes(key, state), None))  # its cohort counts leave the alias
                if past is not None:
                    outbox.add(await history.delete(partition, key))
                stuck, _ = self._indexes(partition)
                stuck.forget(key)
            # The alias lives as long as an unfinished message would after its last report.
            _, expiries = self._indexes(partition)
            expiries.schedule(key, alias.expires_at(self._keep_ms))
        await self._send(out, outbox)
        await self._signal(moved_signals(left, self._cohort_ms), outbox)

    async def merge(
        self, merges: list[dict[str, Any]], partition: int, outbox: Delivery
    ) -> list[tuple[bytes, dict[str, object]]]:
        """Join what was tracked under aliases into canonical keys of this partition; the
        StatusChange records (key, record) of the states that moved on."""
        _, history = self._tables
        states = self._states()
        changes: list[tuple[bytes, dict[str, object]]] = []
        joined: list[tuple[MessageState | None, MessageState | None]] = []
        for item in merges:
            key = str(item["message_key"]).encode()
            if item["state"] is not None:
                moved = state_from_bytes(str(item["alias"]).encode(), item["state"])
                current = states.get(partition, key)
                before = state_from_bytes(key, current) if current is not None else None
                after = move(before, moved, item["message_key"])
                if after != before:
                    outbox.add(await states.set(partition, key, state_to_bytes(after)))
                    joined.append((before, after))  # the joined state's cohort counts replace its own
                    stuck, expiries = self._indexes(partition)
                    stuck.note(key, after, None)
                    expiries.note(key, after)
                change = moved_record(before, after, str(item["alias"]))
                if change is not None:
                    changes.append((key, change))
            if item["history"] is not None:
                await self._add(history, partition, key, from_bytes(item["history"]), outbox)
        await self._signal(moved_signals(joined, self._cohort_ms), outbox)
        return changes

    async def remember(
        self, entries: dict[bytes, list[Entry]], partition_of: dict[bytes, int], outbox: Delivery
    ) -> None:
        """Add tracked events' entries to their messages' histories."""
        _, history = self._tables
        for key, added in entries.items():
            await self._add(history, partition_of[key], key, added, outbox)

    async def notes(self, notes: list[dict[str, Any]], partition: int, outbox: Delivery) -> None:
        """Add dead letters' entries to their messages' histories. A message known only by
        its dead letters gets an expiry of its own (an unfinished message's retention)."""
        _, history = self._tables
        states = self._states()
        for note in notes:
            key = str(note["message_key"]).encode()
            kept = await self._add(history, partition, key, [note_entry(note)], outbox)
            if states.get(partition, key) is None and (at := expires_at(kept, self._keep_ms)) is not None:
                _, expiries = self._indexes(partition)
                expiries.schedule(key, at)

    async def _add(
        self, history: TableWriter, partition: int, key: bytes, added: Iterable[Entry], outbox: Delivery
    ) -> tuple[Entry, ...]:
        """Add entries to a key's history; the history as kept."""
        if self._limit <= 0:
            return ()
        current = history.get(partition, key)
        kept = add(from_bytes(current), added, self._limit)
        value = to_bytes(kept)
        if value != current:
            outbox.add(await history.set(partition, key, value))
        return kept

    async def retired(self, partition: int, key: bytes, outbox: Delivery) -> None:
        """The message left the table: its history goes with it."""
        _, history = self._tables
        if history.get(partition, key) is not None:
            outbox.add(await history.delete(partition, key))

    async def expire(self, partition: int, key: bytes, now: int, outbox: Delivery) -> None:
        """A due key without a state: an alias, or the history of dead letters only, whose
        retention has passed leaves its table; what is not due yet (refreshed since it was
        scheduled) is scheduled again, so that no entry is left without a deadline."""
        aliases, history = self._tables
        later: list[int] = []
        alias = aliases.get(partition, key)
        if alias is not None:
            alias_at = Alias.from_bytes(alias).expires_at(self._keep_ms)
            if alias_at <= now:
                outbox.add(await aliases.delete(partition, key))
            else:
                later.append(alias_at)
        history_at = expires_at(from_bytes(history.get(partition, key)), self._keep_ms)
        if history_at is not None:
            if history_at <= now:
                outbox.add(await history.delete(partition, key))
            else:
                later.append(history_at)
        if later:
            _, expiries = self._indexes(partition)
            expiries.schedule(key, min(later))

    def deadlines(self, partition: int) -> Iterator[tuple[bytes, int]]:
        """The deadline of every alias of a partition, and of every history kept there without a
        state: what the retention index holds besides the states' expiries, rebuilt with them
        when the partition is assigned (after a restart or a rebalance; streams/agents.py).

        Aliases are read in full (small values, Gupshup's only). Of the histories only the keys
        are read, and the value of those without a state: a message's history leaves with its
        state, whose own expiry the index gets from the state table.
        """
        aliases, history = self._tables
        states = self._states()
        for key, value in aliases.items(partition):
            yield key, Alias.from_bytes(value).expires_at(self._keep_ms)
        for key in history.keys(partition):
            if states.get(partition, key) is not None:
                continue
            at = expires_at(from_bytes(history.get(partition, key)), self._keep_ms)
            if at is not None:
                yield key, at

    async def persisted(self) -> None:
        """Once the batch's deliveries are acknowledged (TableWriter.persisted)."""
        if self._writers is not None:
            for writer in self._writers:
                await writer.persisted()

    async def _signal(self, signals: list[tuple[bytes, bytes]], outbox: Delivery) -> None:
        producer, topic = self._t.app.producer, self._t.settings.topics.signals
        for key, value in signals:
            outbox.add(await producer.send(topic, key, value, None, None, None))

    async def _send(self, out: _Bundles, outbox: Delivery) -> None:
        producer, topic = self._t.app.producer, self._t.settings.topics.events
        for partition, key, value in out.encoded():
            outbox.add(await producer.send(topic, key, value, partition, None, None))


def resolve(t: Topology, key: bytes) -> bytes:
    """The canonical key of `key` when it is a known alias (read on this worker), else `key`."""
    value = t.aliases.get(key)
    return Alias.from_bytes(value).canonical.encode() if value is not None else key
