"""A message counted under an alias before the alias was known moves into its message's cohort.

A Gupshup report with WhatsApp's id only, arriving before any report with both ids, is tracked
as a message of its own: it counts in its cohort (attempted, and delivered/read by what it
said). When the alias is recorded its state joins the canonical message, and its cohort counts
must follow: deducted under the alias, the joined state's counts in place of the canonical
one's. The property: the track stage run on the reports in any order, every re-keyed, told or
merged bundle processed in any order, publishes funnel deltas that sum to the funnel of the
final states, where the message counts once.
"""

from __future__ import annotations

from collections import Counter
from types import SimpleNamespace
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.codec import codec
from streams.agents import _Tracker
from streams.core.batches import decode_signals
from streams.core.partitioning import key_partition
from streams.core.records import event_to_record, state_from_bytes
from streams.domain.funnel import funnel_of
from tests.fake_tables import FakeOutbox, FakeTable, fake_topology
from tests.unit.test_message_ids import GS, WA, gupshup_v2

HOUR_S = 3600
PARTITIONS = 4


class Outbox(FakeOutbox):
    def __init__(self, producer: Any) -> None:
        super().__init__()
        self._producer = producer

    async def send(self, topic: str, items: Any) -> None:
        for key, value in items:
            await self._producer.send(topic, key, value, None)


class Track:
    """The track stage over in-memory tables; its outputs stay in the fake producer."""

    def __init__(self) -> None:
        self.t = fake_topology(partitions=PARTITIONS, cohort_s=HOUR_S, history_limit=10)
        self.tracker = _Tracker(self.t)
        self.states, self.aliases, self.history = FakeTable(), FakeTable(), FakeTable()
        self.tracker._writer = self.states  # type: ignore[assignment]
        self.tracker.ids._writers = (self.aliases, self.history)  # type: ignore[assignment]
        self.producer = self.t.app.producer
        self.read = 0  # how much of the producer's output has been taken as input

    async def process(self, partition: int, value: bytes) -> None:
        record = SimpleNamespace(
            value=value, message=SimpleNamespace(partition=partition, topic="events", offset=0, key=b"")
        )
        await self.tracker.batch([record], Outbox(self.producer))  # type: ignore[list-item]

    def bundles(self) -> list[tuple[int, bytes]]:
        """The bundles sent to wa.status.events since the last call (re-keyed reports, aliases, merges)."""
        sent = self.producer.sent[self.read :]
        self.read = len(self.producer.sent)
        topic = self.t.settings.topics.events
        return [(partition, value) for t, _, value, partition in sent if t == topic]

    def funnel(self) -> dict[str, Counter[str]]:
        """Every funnel delta published on wa.channel.signals, summed by cohort key."""
        total: dict[str, Counter[str]] = {}
        for _, value, _ in self.producer.to(self.t.settings.topics.signals):
            provider, channel, view = decode_signals(value)
            for campaign, start, counts in view.funnel:
                scope = f"{provider}:{channel}" + (f"#{campaign}" if campaign else "")
                total.setdefault(f"{scope}@{start}", Counter()).update(counts)
        return {key: +counts for key, counts in total.items() if +counts}


def _reports() -> list[Any]:
    return [
        gupshup_v2("enqueued", 1_750_030_000, request_id="r-enq"),
        gupshup_v2("sent", 1_750_030_010, request_id="r-sent"),
        gupshup_v2("delivered", 1_750_030_020, request_id="r-dlv"),
        gupshup_v2("read", 1_750_640_000, gs_id=None, request_id="r-read"),  # a week later: WhatsApp's id only
    ]


@settings(max_examples=60, deadline=None)
@given(st.permutations(range(4)), st.randoms(use_true_random=False))
async def test_the_funnel_counts_the_message_once_whatever_order_its_ids_arrive_in(order: list[int], rnd: Any) -> None:
    track = Track()
    bundle_codec = codec("status_event_bundle")
    reports = _reports()
    pending = [
        (key_partition(e.message_key.encode(), PARTITIONS), bundle_codec.encode({"events": [event_to_record(e)]}))
        for e in (reports[i] for i in order)
    ]
    while pending:
        # Reports in their order; what the stage sends itself, at any point after it was sent.
        partition, value = pending.pop(rnd.randrange(len(pending)) if rnd.random() < 0.5 else 0)
        await track.process(partition, value)
        pending += track.bundles()

    states = [state_from_bytes(key, value) for part in track.states.data.values() for key, value in part.items()]
    assert [s.message_key for s in states] == [f"gupshup:default:{GS}"]
    alias = f"gupshup:default:{WA}".encode()
    assert track.aliases.get(key_partition(alias, PARTITIONS), alias)
    expected = {cohort.key: +counts for cohort, counts in funnel_of(states, HOUR_S * 1000).items()}
    assert track.funnel() == expected
    (counts,) = expected.values()
    assert (counts["attempted"], counts["delivered"], counts["read"]) == (1, 1, 1)


async def test_a_state_tracked_under_the_alias_leaves_its_cohort_when_the_alias_is_recorded() -> None:
    track = Track()
    bundle_codec = codec("status_event_bundle")
    read, sent = _reports()[3], _reports()[1]
    for event in (read, sent):  # the alias-only read first: tracked as a message of its own
        await track.process(
            key_partition(event.message_key.encode(), PARTITIONS),
            bundle_codec.encode({"events": [event_to_record(event)]}),
        )
    assert sum(c["attempted"] for c in track.funnel().values()) == 2  # two messages, for now
    for partition, value in track.bundles():  # the alias is told
        await track.process(partition, value)
    for partition, value in track.bundles():  # the merge
        await track.process(partition, value)
    funnel = track.funnel()
    assert sum(c["attempted"] for c in funnel.values()) == 1
    assert sum(c["read"] for c in funnel.values()) == 1
    assert sum(c["delivered_implied"] for c in funnel.values()) == 1  # read, never reported delivered
