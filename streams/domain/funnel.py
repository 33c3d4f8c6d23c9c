"""Send-cohort funnels: what each message contributes to its cohort, as deltas between states.

A message belongs to the cohort of its first known event time (the earliest time of any
ranked status in its state), per channel and, when it has one, per campaign. Its
contribution to that cohort is a function of its state alone (`contribution`), so a change
of state contributes `contribution(after) - contribution(before)` (`delta`): the old stage
counts leave, the new ones arrive, and a message that moves on (sent → delivered → read,
failed → delivered), or whose first event turns out to be earlier (an out-of-order report
moves it to an earlier cohort), moves its counts. Summed over all changes of all messages the
deltas telescope to the sum of the contributions of the final states, whatever the order,
repeats and timing of the webhooks: that is the property the tests check.

Counts are plain signed counters with named keys (below), so deltas travel in one Avro map
and partial sums add up; the record builders turn them into the published schema.
"""

from __future__ import annotations

import dataclasses
import datetime
import hashlib
import re
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import orjson

from streams.domain.lattice import MessageState
from streams.domain.metrics import BUCKETS, LATENCY_BOUNDS_MS, bucket_of, percentiles
from streams.domain.status import RANKED, Status

# Counter keys. Every message counts in `attempted`; then in exactly one outcome: delivered
# (explicit or implied by read), failed (its status is failed: a later delivery moves it),
# expired (left the table unfinished) or pending at its furthest stage (queued/created/sent).
ATTEMPTED = "attempted"
DELIVERED = "delivered"
DELIVERED_IMPLIED = "delivered_implied"
READ = "read"
FAILED = "failed"
EXPIRED = "expired"
PENDING_STAGES: tuple[Status, ...] = (Status.QUEUED, Status.CREATED, Status.SENT)
REASON = "reason:"
CODE = "code:"
SENT_TO_DELIVERED = "s2d:"
DELIVERED_TO_READ = "d2r:"

Counts = Counter[str]

DEFAULT_COHORT_MS = 3_600_000


@dataclasses.dataclass(frozen=True, slots=True)
class Cohort:
    """One cohort: a channel (or one campaign of it) and the start of a cohort period."""

    provider: str
    channel: str
    campaign: str | None
    start: int

    @property
    def channel_key(self) -> str:
        """`provider:channel`: the key of the channel's signals, which carry its deltas."""
        return f"{self.provider}:{self.channel}"

    @property
    def key(self) -> str:
        """The record key on the funnel topic and in the cohort table.

        `provider:channel@start` for the whole channel, `provider:channel#campaign@start` for
        one campaign (start in epoch ms). The channel key comes first, so one channel's cohorts
        share a prefix.
        """
        scope = self.channel_key if self.campaign is None else f"{self.channel_key}#{self.campaign}"
        return f"{scope}@{self.start}"


def cohort_start(at_ms: int, cohort_ms: int) -> int:
    """Start of the cohort period holding `at_ms`."""
    return at_ms - at_ms % cohort_ms


def first_event_at(state: MessageState) -> int | None:
    """The earliest time of any ranked status: what decides the message's cohort."""
    return min((t for status in RANKED if (t := state.time_of(status)) is not None), default=None)


def message_counts(state: MessageState, *, expired: bool = False) -> Counts:
    """What one message counts in its cohort (`expired`: it left the table unfinished)."""
    counts: Counts = Counter()
    status = state.status
    if status is None:
        return counts
    counts[ATTEMPTED] = 1
    delivered_at = state.effective_delivered_at
    if delivered_at is not None:
        counts[DELIVERED] = 1
        if state.delivered_implied:
            counts[DELIVERED_IMPLIED] = 1
        if state.read_at is not None:
            counts[READ] = 1
        if state.sent_at is not None:
            counts[f"{SENT_TO_DELIVERED}{bucket_of(delivered_at - state.sent_at)}"] = 1
        if state.read_at is not None:
            counts[f"{DELIVERED_TO_READ}{bucket_of(state.read_at - delivered_at)}"] = 1
    elif status is Status.FAILED:
        counts[FAILED] = 1
        failure = state.failure
        if failure is not None:
            counts[REASON + failure.reason.value] = 1
            counts[CODE + (failure.error_code or "none")] = 1
    elif expired:
        counts[EXPIRED] = 1
    else:
        counts[status.value] = 1
    return counts


def cohorts_of(state: MessageState, cohort_ms: int) -> list[Cohort]:
    """The cohorts a message counts in: its channel's and, with a campaign, the campaign's."""
    first = first_event_at(state)
    if first is None:
        return []
    start = cohort_start(first, cohort_ms)
    found = [Cohort(state.provider, state.channel, None, start)]
    if state.campaign is not None:
        found.append(Cohort(state.provider, state.channel, state.campaign, start))
    return found


def delta(
    before: MessageState | None,
    after: MessageState | None,
    cohort_ms: int,
    *,
    expired: bool = False,
    into: dict[Cohort, Counts] | None = None,
) -> dict[Cohort, Counts]:
    """What a change of one message's state does to the cohorts: remove the old counts, add the
    new ones (`expired`: the after state left the table unfinished). With `into`, the deltas are
    added to those of other changes; counters and cohorts whose delta sums to nothing are left out."""
    out: dict[Cohort, Counts] = {} if into is None else into
    # Only the cohorts this change touched are tidied: `into` may gather a whole batch, and
    # sweeping all of it per message made a batch quadratic (30 % of the worker's time).
    touched: set[Cohort] = set()
    for state, sign, gone in ((before, -1, False), (after, 1, expired)):
        if state is None:
            continue
        counts = message_counts(state, expired=gone)
        for cohort in cohorts_of(state, cohort_ms):
            target = out.get(cohort)
            if target is None:
                target = out[cohort] = Counter()
            touched.add(cohort)
            for name, count in counts.items():
                target[name] += sign * count
    for cohort in touched:
        counts = out[cohort]
        for name in [n for n, c in counts.items() if c == 0]:
            del counts[name]
        if not counts:
            del out[cohort]
    return out


def funnel_of(states: Iterable[MessageState], cohort_ms: int) -> dict[Cohort, Counts]:
    """The funnel computed straight from states (what the deltas must add up to)."""
    total: dict[Cohort, Counts] = {}
    for state in states:
        delta(None, state, cohort_ms, into=total)
    return total


@dataclasses.dataclass(slots=True)
class CohortRow:
    """One cohort's running counts in the cohort table, and what has been applied and published.

    `applied` is the offset (on the channel's wa.channel.signals partition) of the last record
    folded in: a record read again after a restart is not counted twice.
    """

    cohort: Cohort
    counts: Counts = dataclasses.field(default_factory=Counter)
    revision: int = -1
    applied: int = -1
    fresh: bool = False  # changed since last published (not stored)

    def apply(self, change: Mapping[str, int], offset: int) -> bool:
        """Fold one delta from the signals record at `offset`; False when it was already folded."""
        if offset <= self.applied:
            return False
        for name, count in change.items():
            self.counts[name] += count
        for name in [n for n, c in self.counts.items() if c == 0]:
            del self.counts[name]
        self.applied = offset
        self.fresh = True
        return True

    def publish(self, cohort_ms: int) -> dict[str, Any]:
        """The record to publish now: a new revision when the counts changed, else the last one
        again (a record read again after a restart may have been folded and stored, but its
        funnel record not delivered: publishing it again is harmless for an upsert)."""
        if self.fresh or self.revision < 0:
            self.revision += 1
            self.fresh = False
        return funnel_record(self, cohort_ms)

    def to_bytes(self) -> bytes:
        """Compact table value."""
        c = self.cohort
        return orjson.dumps(
            {"p": c.provider, "c": c.channel, "k": c.campaign, "s": c.start, "n": self.counts}
            | {"r": self.revision, "o": self.applied}
        )

    @classmethod
    def from_bytes(cls, data: bytes) -> CohortRow:
        """Inverse of to_bytes."""
        d: dict[str, Any] = orjson.loads(data)
        return cls(Cohort(d["p"], d["c"], d["k"], d["s"]), Counter(d["n"]), d["r"], d["o"])


def fold(
    rows: dict[str, CohortRow],
    load: Callable[[str], CohortRow | None],
    *,
    provider: str,
    channel: str,
    deltas: Iterable[tuple[str | None, int, Mapping[str, int]]],
    offset: int,
) -> None:
    """Fold one signals record's deltas into the rows of a batch (`load` reads a row not yet in
    `rows` from the table). Every row folded or skipped stays in `rows`, to be published."""
    for campaign, start, counts in deltas:
        cohort = Cohort(provider, channel, campaign, start)
        row = rows.get(cohort.key)
        if row is None:
            row = rows[cohort.key] = load(cohort.key) or CohortRow(cohort)
        row.apply(counts, offset)


def _histogram(counts: Mapping[str, int], prefix: str) -> list[int]:
    histogram = [0] * BUCKETS
    for name, count in counts.items():
        if name.startswith(prefix):
            histogram[int(name[len(prefix) :])] += count
    return histogram


def _by(counts: Mapping[str, int], prefix: str) -> dict[str, int]:
    return {name[len(prefix) :]: count for name, count in sorted(counts.items()) if name.startswith(prefix) and count}


def rate(numerator: int, denominator: int) -> float | None:
    """A cohort ratio; None without a denominator.

    Within [0, 1] by construction (every delivered or failed message is an attempted one, every
    read one a delivered one); clamped all the same, so that a count skewed by a crash between a
    table write and its signals record (docs/topics.md) can never show as 120 %.
    """
    if denominator <= 0:
        return None
    return min(max(numerator / denominator, 0.0), 1.0)


def summary(counts: Mapping[str, int]) -> dict[str, Any]:
    """Counts, rates and latency percentiles of one cohort or of several cohorts' sum."""
    get = counts.get
    attempted, delivered, read, failed = get(ATTEMPTED, 0), get(DELIVERED, 0), get(READ, 0), get(FAILED, 0)
    pending = {f"pending_{stage.value}": get(stage.value, 0) for stage in PENDING_STAGES}
    s2d, d2r = _histogram(counts, SENT_TO_DELIVERED), _histogram(counts, DELIVERED_TO_READ)
    return {
        "attempted": attempted,
        "delivered": delivered,
        "delivered_implied": get(DELIVERED_IMPLIED, 0),
        "read": read,
        "failed": failed,
        "expired": get(EXPIRED, 0),
        "pending": sum(pending.values()),
        **pending,
        "failures_by_reason": _by(counts, REASON),
        "failures_by_code": _by(counts, CODE),
        "delivery_rate": rate(delivered, attempted),
        "read_rate": rate(read, delivered),
        "failure_rate": rate(failed, attempted),
        "sent_to_delivered": s2d,
        "delivered_to_read": d2r,
        "sent_to_delivered_ms": percentiles(s2d),
        "delivered_to_read_ms": percentiles(d2r),
    }


def funnel_record(row: CohortRow, cohort_ms: int) -> dict[str, Any]:
    """The CohortFunnel record (schemas/cohort_funnel.avsc) of a row's current counts."""
    c = row.cohort
    return {
        "funnel_id": hashlib.blake2b(f"{c.key}|{cohort_ms}".encode(), digest_size=12).hexdigest(),
        "revision": max(row.revision, 0),
        "scope": "campaign" if c.campaign is not None else "channel",
        "provider": c.provider,
        "channel": c.channel,
        "campaign": c.campaign,
        "cohort_start": c.start,
        "cohort_end": c.start + cohort_ms,
        **summary(row.counts),
    }


def counts_of_record(record: Mapping[str, Any]) -> Counts:
    """The counts a CohortFunnel record (or a summary) carries, to sum several cohorts."""
    counts: Counts = Counter()
    for name in (ATTEMPTED, DELIVERED, DELIVERED_IMPLIED, READ, FAILED, EXPIRED):
        counts[name] = int(record.get(name) or 0)
    for stage in PENDING_STAGES:
        counts[stage.value] = int(record.get(f"pending_{stage.value}") or 0)
    for prefix, field in ((REASON, "failures_by_reason"), (CODE, "failures_by_code")):
        for name, count in (record.get(field) or {}).items():
            counts[prefix + name] += int(count)
    for prefix, field in ((SENT_TO_DELIVERED, "sent_to_delivered"), (DELIVERED_TO_READ, "delivered_to_read")):
        for index, count in enumerate(record.get(field) or []):
            if count:
                counts[f"{prefix}{index}"] += int(count)
    return counts


def select(
    rows: Iterable[CohortRow], *, campaign: str | None = None, since: int | None = None, until: int | None = None
) -> list[CohortRow]:
    """The rows of one scope (the whole channel, or one campaign) whose start is in [since, until)."""
    return sorted(
        (
            row
            for row in rows
            if row.cohort.campaign == campaign
            and (since is None or row.cohort.start >= since)
            and (until is None or row.cohort.start < until)
        ),
        key=lambda row: row.cohort.start,
    )


def funnel_view(
    provider: str,
    channel: str,
    rows: Iterable[CohortRow],
    cohort_ms: int,
    *,
    campaign: str | None = None,
    since: int | None = None,
    until: int | None = None,
) -> dict[str, Any]:
    """The JSON answer of GET /funnel/{provider}/{channel}: the selected cohorts' sum and each one."""
    selected = select(rows, campaign=campaign, since=since, until=until)
    total: Counts = Counter()
    for row in selected:
        total.update(row.counts)
    return {
        "provider": provider,
        "channel": channel,
        "campaign": campaign,
        "since": since,
        "until": until,
        "cohort_ms": cohort_ms,
        "latency_bounds_ms": list(LATENCY_BOUNDS_MS),
        **summary(total),
        "cohorts": [funnel_record(row, cohort_ms) for row in selected],
    }


def parse_instant(text: str) -> int:
    """Epoch milliseconds from a query parameter: digits (epoch ms) or ISO 8601 (UTC when no
    offset is given); raises ValueError."""
    text = text.strip()
    if text.lstrip("-").isdigit():
        return int(text)
    if "T" in text:  # an unencoded "+02:00" in a query string arrives as " 02:00"
        text = re.sub(r" (\d\d:?\d\d)$", r"+\1", text)
    parsed = datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=datetime.UTC)
    return int(parsed.timestamp() * 1000)
