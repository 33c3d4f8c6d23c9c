"""Batch planning for the agents: pure functions from consumed records to records to produce.

The normalize stage turns a batch of raw webhooks into one event bundle per partition of
wa.status.events (every key of a bundle hashes to that partition, so table writes made while
tracking it land in each key's own changelog partition); the track stage folds a bundle into
the table and plans the public records. Both pre-aggregate what they tell the channel agent,
one ChannelSignals record per channel per batch.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable

from schemas.codec import codec
from schemas.privacy import Privacy
from streams.adapters.registry import Resolver, adapter_for
from streams.adapters.salvage import item_keys, message_keys
from streams.core.normalizer import MASK, Normalized, normalize
from streams.core.outputs import Source, audit_record, dead_letter_record
from streams.core.partitioning import key_partition
from streams.core.records import event_to_record, state_from_bytes, state_to_bytes
from streams.core.tracker import Outcome, state_changed, track
from streams.domain.alerting import message_alerts
from streams.domain.channel import ChannelSignalsView
from streams.domain.clock import bounded
from streams.domain.events import StatusEvent, message_key
from streams.domain.funnel import DEFAULT_COHORT_MS, Cohort, Counts
from streams.domain.funnel import delta as funnel_delta
from streams.domain.history import DEAD_LETTERED, Entry, event_entry
from streams.domain.lattice import MessageState
from streams.domain.metrics import Scope, WindowAggregate, contributions
from streams.domain.stuck import stuck_alert

Keyed = tuple[bytes, bytes]


@dataclasses.dataclass(slots=True)
class ChannelSignals:
    """What one batch saw of one channel (schemas/channel_signals.avsc)."""

    provider: str
    channel: str
    max_event_at: int | None = None
    dead_letters: int = 0
    tick: bool = False
    channel_events: list[dict[str, object]] = dataclasses.field(default_factory=list)
    windows: dict[tuple[str | None, int], WindowAggregate] = dataclasses.field(default_factory=dict)
    alerts: list[bytes] = dataclasses.field(default_factory=list)
    funnel: dict[tuple[str | None, int], Counts] = dataclasses.field(default_factory=dict)

    @property
    def key(self) -> bytes:
        """The channel's key on wa.channel.signals."""
        return f"{self.provider}:{self.channel}".encode()

    def saw(self, at: int) -> None:
        """Note an event time of this channel."""
        self.max_event_at = at if self.max_event_at is None else max(self.max_event_at, at)

    def encode(self) -> bytes:
        """Single-object Avro bytes."""
        return codec("channel_signals").encode(
            {
                "provider": self.provider,
                "channel": self.channel,
                "max_event_at": self.max_event_at,
                "dead_letters": self.dead_letters,
                "tick": self.tick,
                "channel_events": self.channel_events,
                "windows": [
                    {"campaign": campaign, "start": start, **agg.to_wire()}
                    for (campaign, start), agg in self.windows.items()
                ],
                "alerts": self.alerts,
                "funnel": [
                    {"campaign": campaign, "cohort_start": start, "counts": dict(counts)}
                    for (campaign, start), counts in self.funnel.items()
                ],
            }
        )


def decode_signals(data: bytes) -> tuple[str, str, ChannelSignalsView]:
    """(provider, channel, content) of a ChannelSignals record; raises SchemaError."""
    record = codec("channel_signals").decode(data)
    provider, channel = record["provider"], record["channel"]
    alert_codec = codec("alert")
    view = ChannelSignalsView(
        max_event_at=record["max_event_at"],
        dead_letters=record["dead_letters"],
        tick=record["tick"],
        channel_events=[(e["kind"], e["at"], e["detail"]) for e in record["channel_events"]],
        windows=[
            (Scope(provider, channel, w["campaign"]), w["start"], WindowAggregate.from_wire(w))
            for w in record["windows"]
        ],
        alerts=[alert_codec.decode(a) for a in record["alerts"]],
        funnel=[(f["campaign"], f["cohort_start"], f["counts"]) for f in record["funnel"]],
    )
    return provider, channel, view


class _SignalsByChannel(dict[tuple[str, str], ChannelSignals]):
    def of(self, provider: str, channel: str) -> ChannelSignals:
        found = self.get((provider, channel))
        if found is None:
            found = self[(provider, channel)] = ChannelSignals(provider, channel)
        return found

    def encoded(self) -> list[Keyed]:
        return [(s.key, s.encode()) for s in self.values()]


@dataclasses.dataclass(frozen=True, slots=True)
class RawRecord:
    """A consumed record of wa.webhooks.raw."""

    key: bytes | None
    value: bytes
    source: Source


@dataclasses.dataclass(slots=True)
class NormalizePlan:
    """Records the normalize stage produces for one batch."""

    bundles: dict[int, list[StatusEvent]] = dataclasses.field(default_factory=dict)
    # History notes (schemas/status_event_bundle.avsc HistoryNote) of dead letters whose
    # message ids could be read, by the partition of their message key.
    notes: dict[int, list[dict[str, object]]] = dataclasses.field(default_factory=dict)
    dead_letters: list[Keyed] = dataclasses.field(default_factory=list)
    audits: list[Keyed] = dataclasses.field(default_factory=list)
    signals: list[Keyed] = dataclasses.field(default_factory=list)
    events: int = 0

    def encoded_bundles(self) -> list[tuple[int, bytes, bytes]]:
        """(partition, key, value) of each event bundle; the key is its first message key."""
        bundle_codec = codec("status_event_bundle")
        encoded = []
        for partition in {**self.bundles, **self.notes}:
            events = self.bundles.get(partition, [])
            notes = self.notes.get(partition, [])
            key = events[0].message_key if events else str(notes[0]["message_key"])
            value = bundle_codec.encode({"events": [event_to_record(e) for e in events], "notes": notes})
            encoded.append((partition, key.encode(), value))
        return encoded


def plan_normalize(
    records: Iterable[RawRecord],
    partitions: int,
    accept: Callable[[StatusEvent], bool] = lambda _event: True,
    resolve: Resolver = adapter_for,
    privacy: Privacy = MASK,
    *,
    at: int,
) -> NormalizePlan:
    """Normalise a batch received at `at` (epoch ms, the caller's clock): events bundled by
    partition, dead letters, one audit per webhook."""
    plan = NormalizePlan()
    signals = _SignalsByChannel()
    for record in records:
        result = normalize(record.value, resolve, privacy)
        raw = result.raw
        request_id = raw.request_id if raw else (record.key or b"").decode("utf-8", "replace")
        provider = raw.provider if raw else "unknown"
        channel = raw.channel if raw else "unknown"
        kept = [e for e in result.events if accept(e)]
        keys = tuple(dict.fromkeys(e.message_key for e in result.events))
        for event in kept:
            key = event.message_key.encode()
            plan.bundles.setdefault(key_partition(key, partitions), []).append(event)
            # A time stamped ahead of receipt moves the channel's watermark no further than
            # the receipt allows; the event still counts in the window of its own time.
            signals.of(event.provider, event.channel).saw(bounded(event.occurred_at, event.received_at))
        plan.events += len(kept)
        for channel_event in result.channel_events:
            # A channel event's time moves the watermark too: bounded the same way.
            channel_at = bounded(channel_event.occurred_at, raw.received_at if raw else None)
            signals.of(channel_event.provider, channel_event.channel).channel_events.append(
                {"kind": channel_event.kind, "at": channel_at, "detail": channel_event.detail}
            )
        for reason, salvaged in _dead_letters(result):
            plan.dead_letters.append(
                (
                    request_id.encode(),
                    dead_letter_record(
                        request_id,
                        provider=provider,
                        channel=channel,
                        reason=reason,
                        source=record.source,
                        value=record.value,
                        at=at,
                    ),
                )
            )
            if raw is not None:
                signals.of(provider, channel).dead_letters += 1
                keys += tuple(k for k in salvaged if k not in keys)
                for message in salvaged:
                    plan.notes.setdefault(key_partition(message.encode(), partitions), []).append(
                        {
                            "message_key": message,
                            "request_id": request_id,
                            "received_at": raw.received_at,
                            "provider_status": None,
                            "outcome": DEAD_LETTERED,
                            "detail": reason,
                        }
                    )
        filtered = len(result.events) - len(kept)
        detail = _normalize_detail(result, filtered)
        # A redriven webhook keeps its request id: its audit is a new record, not a repeat of the first.
        redriven = raw.redrive_generation if raw is not None else 0
        plan.audits.append(
            (
                request_id.encode(),
                audit_record(
                    request_id,
                    stage="normalize",
                    discriminator=f"redrive-{redriven}" if redriven else "",
                    provider=provider,
                    channel=channel,
                    outcome=result.outcome,
                    at=at,
                    detail=detail,
                    events_found=len(result.events),
                    events_ignored=result.ignored + filtered,
                    message_keys=keys,
                ),
            )
        )
    plan.signals = signals.encoded()
    return plan


# Reasons of rejected items quoted in a webhook's audit detail; the dead letters have them all.
_AUDIT_REASONS = 5


def _dead_letters(result: Normalized) -> list[tuple[str, tuple[str, ...]]]:
    """(reason, message keys read from what was refused) of each dead letter of one webhook:
    the whole webhook, or each rejected item of a batch by itself."""
    raw = result.raw
    if result.dead_letter_reason is not None:
        return [(result.dead_letter_reason, message_keys(raw) if raw is not None else ())]
    if raw is None:
        return [(r.dead_letter_reason, ()) for r in result.rejected]
    return [(r.dead_letter_reason, item_keys(raw.provider, raw.channel, r.item)) for r in result.rejected]


def _normalize_detail(result: Normalized, filtered: int) -> str | None:
    """The normalize audit's detail: why it was dead-lettered, which items were, what was
    filtered, and how the content type was found when the receiver sniffed it."""
    parts: list[str] = []
    if result.dead_letter_reason is not None:
        parts.append(result.dead_letter_reason)
    if result.rejected:
        reasons = [r.dead_letter_reason for r in result.rejected[:_AUDIT_REASONS]]
        more = len(result.rejected) - len(reasons)
        items = "item" if len(result.rejected) == 1 else "items"
        parts.append(
            f"{len(result.rejected)} {items} dead-lettered: " + "; ".join(reasons) + (f"; +{more} more" if more else "")
        )
    if filtered:
        parts.append(f"{filtered} events filtered by the channel")
    raw = result.raw
    if raw is not None and raw.sniffed_from is not None:
        sent = f"sent as {raw.sniffed_from!r}" if raw.sniffed_from else "sent without a Content-Type"
        parts.append(f"content type sniffed: read as {raw.content_type} ({sent})")
    return " | ".join(parts) or None


@dataclasses.dataclass(slots=True)
class TrackPlan:
    """Table writes and records the track stage produces for one bundle."""

    writes: dict[bytes, bytes] = dataclasses.field(default_factory=dict)
    states: dict[bytes, MessageState] = dataclasses.field(default_factory=dict)
    changes: list[Keyed] = dataclasses.field(default_factory=list)
    audits: list[Keyed] = dataclasses.field(default_factory=list)
    signals: list[Keyed] = dataclasses.field(default_factory=list)
    outcomes: dict[str, int] = dataclasses.field(default_factory=dict)
    # What each tracked event did, for its message's history (streams/domain/history.py).
    history: dict[bytes, list[Entry]] = dataclasses.field(default_factory=dict)


def _keys_of(event: StatusEvent) -> tuple[str, ...]:
    """The message's key, and the alias it arrived under when it was re-keyed."""
    if event.correlation_id and event.correlation_id != event.message_id:
        return (event.message_key, message_key(event.provider, event.channel, event.correlation_id))
    return (event.message_key,)


def retire_bundles(keys: Iterable[bytes], partitions: int) -> list[tuple[int, bytes, bytes]]:
    """(partition, key, value) of bundles that ask the track agent to re-check these keys' retention.

    Deleting from the table must happen in the track agent (the changelog tombstone goes to the
    partition of the record being processed), so a timer sends the due keys this way.
    """
    by_partition: dict[int, list[str]] = {}
    for key in keys:
        by_partition.setdefault(key_partition(key, partitions), []).append(key.decode())
    bundle_codec = codec("status_event_bundle")
    return [
        (partition, keys_[0].encode(), bundle_codec.encode({"events": [], "retire": keys_}))
        for partition, keys_ in by_partition.items()
    ]


def stuck_signals(states: Iterable[MessageState], max_age_ms: int) -> list[Keyed]:
    """ChannelSignals carrying the stuck-in-sent alerts of these states (rate-limited there)."""
    signals = _SignalsByChannel()
    alert_codec = codec("alert")
    for state in states:
        alert = stuck_alert(state, max_age_ms)
        if alert is not None:
            signals.of(state.provider, state.channel).alerts.append(alert_codec.encode(alert.to_record()))
    return signals.encoded()


def expiry_signals(states: Iterable[MessageState], cohort_ms: int) -> list[Keyed]:
    """ChannelSignals moving messages that leave the table unfinished from pending to expired."""
    cohorts: dict[Cohort, Counts] = {}
    for state in states:
        funnel_delta(state, state, cohort_ms, expired=True, into=cohorts)
    signals = _SignalsByChannel()
    _add_funnel(signals, cohorts)
    return signals.encoded()


def moved_signals(changes: Iterable[tuple[MessageState | None, MessageState | None]], cohort_ms: int) -> list[Keyed]:
    """ChannelSignals carrying the funnel deltas of states that move between keys (one message
    under several ids, streams/message_ids.py): a state tracked under an alias leaves it
    (before, None), and joins its canonical message's state there (before, after). The two
    halves are made on two partitions and meet in the channel's cohort rows, in either order:
    deltas add up, so the message counts once, as its joined state."""
    cohorts: dict[Cohort, Counts] = {}
    for before, after in changes:
        funnel_delta(before, after, cohort_ms, into=cohorts)
    signals = _SignalsByChannel()
    _add_funnel(signals, cohorts)
    return signals.encoded()


def _add_funnel(signals: _SignalsByChannel, cohorts: dict[Cohort, Counts]) -> None:
    for cohort, counts in cohorts.items():
        signals.of(cohort.provider, cohort.channel).funnel[(cohort.campaign, cohort.start)] = counts


def plan_track(
    events: Iterable[StatusEvent],
    lookup: Callable[[bytes], bytes | None],
    window_ms: int,
    cohort_ms: int = DEFAULT_COHORT_MS,
    *,
    at: int,
) -> TrackPlan:
    """Fold a bundle into the table at `at` (epoch ms, the caller's clock); each key is written
    once, however many events it had."""
    plan = TrackPlan()
    signals = _SignalsByChannel()
    change_codec = codec("status_change")
    alert_codec = codec("alert")
    cache: dict[bytes, bytes | None] = {}
    windows: dict[tuple[str, str], dict[tuple[Scope, int], WindowAggregate]] = {}
    cohorts: dict[Cohort, Counts] = {}
    for event in events:
        key = event.message_key.encode()
        current = cache[key] if key in cache else lookup(key)
        before = state_from_bytes(key, current) if current is not None else None
        tracked = track(before, event)
        plan.outcomes[tracked.outcome.value] = plan.outcomes.get(tracked.outcome.value, 0) + 1
        if tracked.outcome is not Outcome.IGNORED:
            plan.history.setdefault(key, []).append(event_entry(event, tracked.outcome.value))
        if state_changed(before, tracked):
            cache[key] = plan.writes[key] = state_to_bytes(tracked.state)
            plan.states[key] = tracked.state
        if tracked.change is None:
            if tracked.outcome is not Outcome.IGNORED:
                plan.audits.append(
                    (
                        event.request_id.encode(),
                        audit_record(
                            event.request_id,
                            stage="track",
                            provider=event.provider,
                            channel=event.channel,
                            outcome=tracked.outcome.value,
                            at=at,
                            detail=event.message_key,
                            discriminator=event.event_id,
                            message_keys=_keys_of(event),
                        ),
                    )
                )
            continue
        plan.changes.append((key, change_codec.encode(tracked.change)))
        channel = signals.of(event.provider, event.channel)
        contributions(before, tracked.state, window_ms, windows.setdefault((event.provider, event.channel), {}))
        funnel_delta(before, tracked.state, cohort_ms, into=cohorts)
        channel.alerts.extend(alert_codec.encode(a.to_record()) for a in message_alerts(before, tracked.state))
    for (provider, channel_name), aggregates in windows.items():
        target = signals.of(provider, channel_name)
        for (scope, start), agg in aggregates.items():
            target.windows[(scope.campaign, start)] = agg
    _add_funnel(signals, cohorts)
    plan.signals = signals.encoded()
    return plan
