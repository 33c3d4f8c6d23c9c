"""One message under several ids: which key is canonical, and how an alias's state joins it.

Gupshup gives a message two ids: its own (`gsId`) and WhatsApp's. Its adapter keys events by
the Gupshup id and puts WhatsApp's in `correlation_id`; a report arriving more than a week after
sending has no `gsId` and can only be keyed by WhatsApp's id. Such a report carries the same id
in both fields. So:

* an event whose `correlation_id` differs from its `message_id` *tells* a correlation: the
  alias `provider:channel:correlation_id` names the canonical `provider:channel:message_id`
  (aliases are channel-scoped like every key: two channels' ids never join);
* an event of a several-ids provider that carries one id only *may be* an alias: the tracker
  looks its key up in the alias table (on the key's own partition) and, when it is one,
  re-keys the event to the canonical message.

Nothing here depends on arrival order: a state tracked under an alias before the correlation
was known is joined into the canonical state with the lattice join (streams/domain/lattice.py),
which is commutative, associative and idempotent.
"""

from __future__ import annotations

import dataclasses

import orjson

from streams.domain.events import StatusEvent, message_key, parse_message_key
from streams.domain.lattice import MessageState, join

#: Providers that give one message several ids (docs/providers.md). Events of the others are
#: never looked up in the alias table, so they cost nothing here.
SEVERAL_IDS = frozenset({"gupshup"})


def alias_told(event: StatusEvent) -> str | None:
    """The alias key this event correlates with its own key, if any."""
    other = event.correlation_id
    if event.provider not in SEVERAL_IDS or not other or other == event.message_id:
        return None
    return message_key(event.provider, event.channel, other)


def may_be_alias(provider: str, message_id: str, correlation_id: str | None) -> bool:
    """Whether a report with these ids could be keyed by an alias (it names no second id)."""
    return provider in SEVERAL_IDS and (correlation_id is None or correlation_id == message_id)


def canonical_id(canonical_key: str) -> str:
    """The message id part of a canonical key."""
    return parse_message_key(canonical_key).message_id


def rekey(event: StatusEvent, canonical_key: str) -> StatusEvent:
    """The event as a report of the canonical message; the id it came with becomes its correlation."""
    return dataclasses.replace(event, message_id=canonical_id(canonical_key), correlation_id=event.message_id)


def move(current: MessageState | None, moved: MessageState, canonical_key: str) -> MessageState:
    """Join the state tracked under an alias into the canonical message's state."""
    renamed = dataclasses.replace(moved, message_id=canonical_id(canonical_key))
    return renamed if current is None else join(current, renamed)


@dataclasses.dataclass(frozen=True, slots=True)
class Alias:
    """An alias table value: the canonical key, and the latest event time that told it."""

    canonical: str
    at: int

    def expires_at(self, keep_ms: int) -> int:
        """When the alias may leave its table: it lives as long as an unfinished message would
        after its last report (`keep_ms`, the retention of unfinished messages)."""
        return self.at + keep_ms

    def refreshed(self, at: int) -> Alias:
        """The same alias told again (the later time keeps it longer)."""
        return self if at <= self.at else Alias(self.canonical, at)

    def to_bytes(self) -> bytes:
        """The compact table value."""
        return orjson.dumps([self.canonical, self.at])

    @staticmethod
    def from_bytes(data: bytes) -> Alias:
        """The table value back."""
        canonical, at = orjson.loads(data)
        return Alias(canonical, at)
