"""`statusflow redrive`: re-publish dead-lettered webhooks to the raw topic after a fix.

The contract (docs/runbook.md, "Redrive dead letters"):

* A run reads the dead-letter topic from its beginning (or `--since`) up to the end offsets it
  finds at start, and the redrive log (wa.webhooks.redrive) to its end: it is bounded.
* What counts for a webhook (a request id) is its latest **attempt**: the raw record whose
  processing failed last. One attempt may leave several dead letters (one per bad item of a
  batch, or repeats after a worker crash); they share the raw record they came from.
* The filters (provider, channel, reason, time) apply to that latest attempt: `--reason` matches
  any of its reasons, `--since`/`--until` its dead letters' time.
* A matched webhook is sent at most once per run: the envelope as received, with two headers
  added (`x-statusflow-redrive`: how many times it has been redriven; `x-statusflow-redrive-run`).
  Request id, body and receipt time are unchanged, so each of its events keeps its id and the
  tracker recognises a webhook it already tracked as a duplicate.
* Each attempt is redriven at most once. Once the broker has acknowledged the envelope, a
  Redrive record (key: request id) names the attempt that was redriven; a later run skips a
  webhook whose latest attempt is that one: it was tracked, or the worker has not got to it yet.
  A webhook that fails again makes a new attempt, dead-lettered with its new reason, which the
  next run may send again: every run returns a still-failing webhook to the DLQ at most once.
  `--again` ignores the log (the tracker still counts a tracked webhook once).

The selection is pure (`Attempts`, `select`); `collect` and `publish` do the I/O.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import datetime as dt
import re
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.errors import KafkaConnectionError, KafkaError

from schemas.channels import PROVIDERS
from schemas.codec import SchemaError, codec
from schemas.envelope import REDRIVE_HEADER, REDRIVE_RUN_HEADER, RawWebhook
from schemas.settings import KafkaSettings
from schemas.topics import ensure_topics, partitions_of
from statusflow_cli.console import EXIT_UNREACHABLE, EXIT_USAGE, CliError, Tracker, Unreachable, progress, say
from statusflow_cli.funnel import instant
from streams.core.outputs import Source

# Envelopes sent per round: their acknowledgements, then their Redrive records, are awaited together.
SEND_BATCH = 500
# A read that makes no progress this long fails (a broker that stopped answering mid-run).
IDLE_TIMEOUT_S = 60.0


# --- what the dead-letter topic and the redrive log say --------------------------------------


@dataclasses.dataclass(frozen=True, slots=True)
class DeadLetter:
    """One record of the dead-letter topic (schemas/dead_letter.avsc) and where it is."""

    request_id: str
    provider: str
    channel: str
    reason: str
    failed_at: int
    source: Source  # the record whose processing failed: the attempt
    raw: bytes
    position: tuple[int, int] = (0, 0)  # (partition, offset) on the dead-letter topic

    @classmethod
    def decode(cls, value: bytes, partition: int = 0, offset: int = 0) -> DeadLetter:
        """Raises SchemaError when the bytes are not a DeadLetter."""
        r = codec("dead_letter").decode(value)
        return cls(
            request_id=r["request_id"],
            provider=r["provider"],
            channel=r["channel"],
            reason=r["reason"],
            failed_at=r["failed_at"],
            source=Source(r["source_topic"], r["source_partition"], r["source_offset"]),
            raw=r["raw"],
            position=(partition, offset),
        )

    @property
    def order(self) -> tuple[int, int]:
        """Which of two dead letters of a webhook is newer (a key keeps its partition)."""
        return (self.failed_at, self.position[1])


@dataclasses.dataclass(frozen=True, slots=True)
class Redriven:
    """What the redrive log says of a webhook: the attempt last redriven, and how often."""

    source: Source
    generation: int

    @classmethod
    def decode(cls, value: bytes) -> tuple[str, Redriven]:
        """(request id, entry); raises SchemaError when the bytes are not a Redrive record."""
        r = codec("redrive").decode(value)
        source = Source(r["source_topic"], r["source_partition"], r["source_offset"])
        return r["request_id"], cls(source, r["generation"])


@dataclasses.dataclass(slots=True)
class Attempt:
    """The latest failed attempt of one webhook: its newest dead letter, every reason it left."""

    latest: DeadLetter
    reasons: list[str]

    @property
    def reason(self) -> str:
        """The reasons as one line."""
        return " | ".join(" ".join(r.split()) for r in self.reasons)


# --- the selection (pure) ---------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, slots=True)
class Filters:
    """Which webhooks a run redrives; an empty set or None lets everything through."""

    providers: frozenset[str] = frozenset()
    channels: frozenset[str] = frozenset()
    reason: re.Pattern[str] | None = None
    since: int | None = None  # epoch ms, inclusive
    until: int | None = None  # epoch ms, inclusive

    def in_scope(self, dead: DeadLetter) -> bool:
        """Provider and channel: the same for every dead letter of a webhook."""
        return (not self.providers or dead.provider in self.providers) and (
            not self.channels or dead.channel in self.channels
        )

    def matches(self, attempt: Attempt) -> bool:
        """Every filter, on the webhook's latest attempt."""
        latest = attempt.latest
        if not self.in_scope(latest):
            return False
        if self.since is not None and latest.failed_at < self.since:
            return False
        if self.until is not None and latest.failed_at > self.until:
            return False
        return self.reason is None or any(self.reason.search(r) for r in attempt.reasons)


class Attempts:
    """The latest attempt of each webhook in scope, fed one dead letter at a time.

    Only the newest dead letter of each webhook is kept (with its raw bytes): memory grows with
    the webhooks in scope, not with the dead letters read.
    """

    def __init__(self, filters: Filters) -> None:
        self._filters = filters
        self._by_request: dict[str, Attempt] = {}
        self.read = 0

    def add(self, dead: DeadLetter | None) -> None:
        """Count a record of the topic; keep it when it is the newest of its webhook."""
        self.read += 1
        if dead is None or not self._filters.in_scope(dead):
            return
        current = self._by_request.get(dead.request_id)
        if current is None:
            self._by_request[dead.request_id] = Attempt(dead, [dead.reason])
        elif dead.source == current.latest.source:
            # The same attempt again: another bad item of the batch, or a repeat after a crash.
            if dead.reason not in current.reasons:
                current.reasons.append(dead.reason)
            if dead.order > current.latest.order:
                current.latest = dead
        elif dead.order > current.latest.order:
            self._by_request[dead.request_id] = Attempt(dead, [dead.reason])

    def __iter__(self) -> Iterator[Attempt]:
        return iter(self._by_request.values())


@dataclasses.dataclass(frozen=True, slots=True)
class Planned:
    """A webhook to send: its latest attempt and the envelope to re-publish."""

    attempt: Attempt
    envelope: RawWebhook

    @property
    def generation(self) -> int:
        """How many times the webhook will have been redriven once this is sent."""
        return self.envelope.redrive_generation


@dataclasses.dataclass(slots=True)
class Selection:
    """What a run does with each matched webhook."""

    read: int = 0
    send: list[Planned] = dataclasses.field(default_factory=list)
    redriven: list[Attempt] = dataclasses.field(default_factory=list)  # this attempt was redriven already
    unusable: list[Attempt] = dataclasses.field(default_factory=list)  # no webhook envelope inside
    held: list[Planned] = dataclasses.field(default_factory=list)  # beyond --limit

    @property
    def matched(self) -> int:
        """Webhooks whose latest attempt passed the filters."""
        return len(self.send) + len(self.redriven) + len(self.unusable) + len(self.held)

    @property
    def skipped(self) -> int:
        """Matched webhooks not sent."""
        return self.matched - len(self.send)

    def summary(self, *, sent: int | None = None) -> str:
        """The last line of a run (`sent=None`: a dry run)."""
        parts = [(len(self.redriven), "already redriven"), (len(self.unusable), "no webhook inside")]
        parts.append((len(self.held), "over --limit"))
        why = ", ".join(f"{n} {what}" for n, what in parts if n)
        done = f"would send {len(self.send)}" if sent is None else f"sent {sent}"
        line = f"read {self.read} dead letters, matched {self.matched} webhooks, {done}, skipped {self.skipped}"
        return f"{line} ({why})" if why else line


def redriven_envelope(raw: RawWebhook, generation: int, run_id: str) -> RawWebhook:
    """The envelope as received, marked as redriven: nothing an id is derived from changes."""
    headers = {**raw.headers, REDRIVE_HEADER: str(generation), REDRIVE_RUN_HEADER: run_id}
    return dataclasses.replace(raw, headers=headers)


def select(
    attempts: Iterable[Attempt],
    filters: Filters,
    log: Mapping[str, Redriven],
    *,
    run_id: str,
    again: bool = False,
    limit: int | None = None,
    read: int = 0,
) -> Selection:
    """Which matched webhooks to send, oldest received first; why the others are skipped."""
    selection = Selection(read=read)
    planned: list[Planned] = []
    for attempt in attempts:
        if not filters.matches(attempt):
            continue
        try:
            raw = RawWebhook.from_avro(attempt.latest.raw)
        except SchemaError:
            selection.unusable.append(attempt)  # e.g. an undecodable event bundle, not a webhook
            continue
        before = log.get(attempt.latest.request_id)
        if before is not None and before.source == attempt.latest.source and not again:
            selection.redriven.append(attempt)
            continue
        generation = max(raw.redrive_generation, before.generation if before else 0) + 1
        planned.append(Planned(attempt, redriven_envelope(raw, generation, run_id)))
    planned.sort(key=lambda p: (p.envelope.received_at, p.envelope.request_id))
    cut = len(planned) if limit is None else limit
    selection.send, selection.held = planned[:cut], planned[cut:]
    selection.redriven.sort(key=lambda a: a.latest.request_id)
    selection.unusable.sort(key=lambda a: a.latest.request_id)
    return selection


def redrive_record(planned: Planned, *, run_id: str, at: int, sent: tuple[int, int]) -> bytes:
    """The Redrive record of a sent webhook (schemas/redrive.avsc)."""
    latest = planned.attempt.latest
    return codec("redrive").encode(
        {
            "request_id": latest.request_id,
            "provider": latest.provider,
            "channel": latest.channel,
            "run_id": run_id,
            "generation": planned.generation,
            "redriven_at": at,
            "reason": planned.attempt.reason,
            "source_topic": latest.source.topic,
            "source_partition": latest.source.partition,
            "source_offset": latest.source.offset,
            "sent_partition": sent[0],
            "sent_offset": sent[1],
        }
    )


def iso(ms: int) -> str:
    """Epoch milliseconds as ISO 8601 UTC."""
    moment = dt.datetime.fromtimestamp(ms / 1000, tz=dt.UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def listing(selection: Selection) -> list[str]:
    """The dry run's lines: action, request id, provider, channel, dead-lettered at, reason."""

    def line(action: str, attempt: Attempt) -> str:
        d = attempt.latest
        return "\t".join((action, d.request_id, d.provider, d.channel, iso(d.failed_at), attempt.reason))

    lines = [line("send", p.attempt) for p in selection.send]
    lines += [line("skip:redriven", a) for a in selection.redriven]
    lines += [line("skip:no-webhook", a) for a in selection.unusable]
    lines += [line("skip:limit", p.attempt) for p in selection.held]
    return lines


# --- arguments --------------------------------------------------------------------------------


def filters_from(args: argparse.Namespace) -> Filters:
    """The filters of the command line; CliError (exit 2) for a bad one."""
    unknown = sorted(set(args.provider or ()) - set(PROVIDERS))
    if unknown:
        msg = f"unknown provider {', '.join(unknown)} (known: {', '.join(PROVIDERS)})"
        raise CliError(msg, EXIT_USAGE)
    pattern = None
    if args.reason is not None:
        pattern = re.compile(re.escape(args.reason), re.IGNORECASE)
    elif args.reason_regex is not None:
        try:
            pattern = re.compile(args.reason_regex)
        except re.error as exc:
            msg = f"--reason-regex {args.reason_regex!r}: {exc}"
            raise CliError(msg, EXIT_USAGE) from exc
    since, until = args.since, args.until
    if since is not None and until is not None and since > until:
        msg = f"--since {iso(since)} is after --until {iso(until)}"
        raise CliError(msg, EXIT_USAGE)
    if args.limit is not None and args.limit < 1:
        msg = "--limit must be a positive number of webhooks"
        raise CliError(msg, EXIT_USAGE)
    return Filters(
        providers=frozenset(args.provider or ()),
        channels=frozenset(args.channel or ()),
        reason=pattern,
        since=since,
        until=until,
    )


def new_run_id() -> str:
    """A run's id: when it started, and a few random characters."""
    return f"{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}-{uuid.uuid4().hex[:6]}"


# --- I/O --------------------------------------------------------------------------------------


async def read_to_end(
    consumer: AIOKafkaConsumer,
    partitions: list[TopicPartition],
    each: Callable[[ConsumerRecord[bytes, bytes]], None],
    *,
    since: int | None = None,
    bar: Tracker | None = None,
) -> None:
    """Hand every record from the beginning (or the first at or after `since`) up to the end
    offsets of this moment to `each`; records written meanwhile are not read."""
    if not partitions:
        return
    consumer.assign(partitions)
    ends = await consumer.end_offsets(partitions)
    starts = await consumer.beginning_offsets(partitions)
    if since is not None:
        found = await consumer.offsets_for_times(dict.fromkeys(partitions, since))
        starts = {tp: ends[tp] if found[tp] is None else max(found[tp].offset, starts[tp]) for tp in partitions}
    for tp in partitions:
        consumer.seek(tp, starts[tp])
    total = sum(ends[tp] - starts[tp] for tp in partitions)
    if bar is not None:
        bar.update(0, total)
    positions = dict(starts)
    pending = [tp for tp in partitions if starts[tp] < ends[tp]]
    last_progress = time.monotonic()
    while pending:
        batches = await consumer.getmany(*pending, timeout_ms=500)
        for tp, records in batches.items():
            for record in records:
                if record.offset < ends[tp]:
                    each(record)
        moved = False
        for tp in pending:
            position = min(await consumer.position(tp), ends[tp])
            moved |= position > positions[tp]
            positions[tp] = position
        pending = [tp for tp in pending if positions[tp] < ends[tp]]
        if bar is not None:
            bar.update(sum(positions[tp] - starts[tp] for tp in partitions), total)
        if moved:
            last_progress = time.monotonic()
        elif time.monotonic() - last_progress > IDLE_TIMEOUT_S:
            left = sum(ends[tp] - positions[tp] for tp in pending)
            msg = f"no progress for {IDLE_TIMEOUT_S:.0f}s reading {pending[0].topic} ({left} records left)"
            raise CliError(msg, EXIT_UNREACHABLE)


def _dead_letter(record: ConsumerRecord[bytes, bytes]) -> DeadLetter | None:
    if record.value is None:
        return None
    try:
        return DeadLetter.decode(record.value, record.partition, record.offset)
    except SchemaError:
        return None


async def collect(settings: KafkaSettings, filters: Filters) -> tuple[Attempts, dict[str, Redriven]]:
    """The latest attempt of each webhook in scope, and the redrive log."""
    topics = settings.topics
    dlq = await partitions_of(settings.bootstrap_servers, [topics.dlq])
    if not dlq:
        msg = f"the dead-letter topic {topics.dlq} does not exist (STATUSFLOW_TOPIC_DLQ; `statusflow topics`)"
        raise CliError(msg, EXIT_USAGE)
    ledger = await partitions_of(settings.bootstrap_servers, [topics.redrive])
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.bootstrap_servers,
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        max_partition_fetch_bytes=8 * 1024 * 1024,
    )
    await consumer.start()
    attempts = Attempts(filters)
    log: dict[str, Redriven] = {}

    def note(record: ConsumerRecord[bytes, bytes]) -> None:
        if record.value is None:
            return
        try:
            request_id, entry = Redriven.decode(record.value)
        except SchemaError:
            return
        log[request_id] = entry  # a later record of a key is its later redrive

    try:
        await read_to_end(consumer, ledger, note)
        with progress(f"redrive: reading {topics.dlq}", None) as bar:
            await read_to_end(consumer, dlq, lambda r: attempts.add(_dead_letter(r)), since=filters.since, bar=bar)
    finally:
        await consumer.stop()
    return attempts, log


async def publish(settings: KafkaSettings, selection: Selection, run_id: str) -> int:
    """Send each planned envelope to the raw topic, then its Redrive record; returns how many
    were acknowledged (all of them, or the error says how far it got)."""
    await ensure_topics(settings)  # the redrive log, on a stack older than it
    producer = AIOKafkaProducer(
        bootstrap_servers=settings.bootstrap_servers,
        acks="all",
        enable_idempotence=True,
        linger_ms=5,
        max_request_size=8 * 1024 * 1024,
    )
    await producer.start()
    sent = 0
    try:
        with progress("redrive: sending", len(selection.send)) as bar:
            for start in range(0, len(selection.send), SEND_BATCH):
                batch = selection.send[start : start + SEND_BATCH]
                try:
                    await _publish_batch(producer, settings, batch, run_id)
                except KafkaError as exc:
                    msg = (
                        f"stopped after {sent} of {len(selection.send)} webhooks: {exc!r} "
                        "(run it again: what was sent is skipped or tracked once)"
                    )
                    raise CliError(msg) from exc
                sent += len(batch)
                bar.advance(len(batch))
    finally:
        await producer.stop()
    return sent


async def _publish_batch(
    producer: AIOKafkaProducer, settings: KafkaSettings, batch: list[Planned], run_id: str
) -> None:
    # The envelopes first: a Redrive record is written only for an envelope the broker holds,
    # so a run cut short re-sends (harmless) rather than skips (a loss).
    topics = settings.topics
    queued = [await producer.send(topics.raw, p.envelope.to_avro(), key=p.envelope.request_id.encode()) for p in batch]
    acked = await asyncio.gather(*queued)
    at = int(time.time() * 1000)
    logged = [
        await producer.send(
            topics.redrive,
            redrive_record(p, run_id=run_id, at=at, sent=(meta.partition, meta.offset)),
            key=p.envelope.request_id.encode(),
        )
        for p, meta in zip(batch, acked, strict=True)
    ]
    await asyncio.gather(*logged)


async def _run(args: argparse.Namespace, filters: Filters) -> int:
    settings = KafkaSettings()
    run_id = new_run_id()
    try:
        attempts, log = await collect(settings, filters)
        selection = select(
            attempts, filters, log, run_id=run_id, again=args.again, limit=args.limit, read=attempts.read
        )
        if args.dry_run:
            for line in listing(selection):
                say(line)
            say(f"dry run: {selection.summary()}")
            return 0
        sent = await publish(settings, selection, run_id) if selection.send else 0
    except KafkaConnectionError as exc:
        raise Unreachable("broker", settings.bootstrap_servers, exc) from exc
    say(f"redrive {run_id}: {selection.summary(sent=sent)}")
    return 0


def cmd_redrive(args: argparse.Namespace) -> int:
    """Re-publish the matched dead-lettered webhooks (or list them with --dry-run)."""
    filters = filters_from(args)
    return asyncio.run(_run(args, filters))


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """The `redrive` subcommand."""
    parser = sub.add_parser(
        "redrive",
        help="re-publish dead-lettered webhooks to the raw topic after a fix",
        description="After an adapter or channel configuration fix (and a worker restart), send the "
        "dead-lettered webhooks that match the filters back to the raw topic, as received. A webhook is "
        "judged by its latest failed attempt; each attempt is redriven once (the redrive log, "
        "wa.webhooks.redrive, remembers), so running it twice tracks a webhook once, and a webhook "
        "that fails again returns to the dead-letter topic once per run, with its new reason. "
        "Reads the dead-letter topic up to its end at start.",
    )
    parser.add_argument("--provider", action="append", help="only this provider's webhooks (repeatable)")
    parser.add_argument("--channel", action="append", help="only this channel's webhooks (repeatable)")
    reason = parser.add_mutually_exclusive_group()
    reason.add_argument("--reason", help="only webhooks whose reason contains this text (case-insensitive)")
    reason.add_argument("--reason-regex", help="only webhooks whose reason matches this regular expression")
    parser.add_argument(
        "--since",
        type=instant,
        help="only dead letters written at or after this time: epoch ms or ISO 8601 (UTC without an offset); "
        "the dead-letter topic is read from there",
    )
    parser.add_argument("--until", type=instant, help="only dead letters written at or before this time (same forms)")
    parser.add_argument("--limit", type=int, default=None, help="send at most this many webhooks, oldest first")
    parser.add_argument(
        "--dry-run",
        action="store_true",
        help="send nothing; print each matched webhook (action, request id, provider, channel, "
        "dead-lettered at, reason) as tab-separated lines",
    )
    parser.add_argument(
        "--again",
        action="store_true",
        help="also send webhooks whose latest attempt was already redriven (the tracker counts them once)",
    )
    parser.set_defaults(func=cmd_redrive)
