"""Any JSON provider by configuration alone: field paths and status words, no code.

A `GenericConfig` says where each field is and what each status word means;
`load_generic_config` builds one from a plain mapping (a TOML/YAML table of a channel
configuration), on top of a base config whose fields it overrides.

Paths are dotted (`data.status.name`), with list steps `items[*]` (every element) or
`items[0]`; `[*].id` starts at a list. A field may name several paths: the first one that
holds a value wins. Keys that contain a dot cannot be addressed.

Configuration keys (all optional; a path key takes a string or a list of strings):

| key | meaning | default |
| --- | --- | --- |
| `items_path` | where a batch's items are (a list is expanded); `""`: the body, or each element of a bare list | `""` |
| `message_id` | the provider's message id | `id`, `message_id` |
| `status` | the provider's status word | `status` |
| `timestamp` | epoch s/ms, ISO-8601 or `15/06/2025 20:20:20` (day first); missing: receipt, flagged | `timestamp` |
| `timezone` | zone of times without one: IANA name (`America/Sao_Paulo`), `UTC`, `-03:00` | `UTC` |
| `error_code` | error code | `error.code`, `error_code` |
| `error_title` | error text | `error.title`, `error.message`, `error_message` |
| `recipient` | recipient number (STATUSFLOW_RECIPIENT_PRIVACY applies) | `recipient`, `recipient_id`, `to` |
| `campaign` | campaign id or name | `campaign.id`, `campaign_id`, `campaign` |
| `channel_event` | a field that names a channel event when it is not in `status` | `event` |
| `connection_state` | where a connection event says its state (connected, …) | `state`, `data.state`, … |
| `statuses` | table word → `"<status>"` or `"failed:<reason>"` or `{status=…, reason=…}` | see below |
| `channel_events` | table word → channel event kind: `logout`, `connected`, `connection` (see below) | |
| `ignore` | list of words that are counted as ignored (inbound, …) | |
| `error_reasons` | table error code → failure reason of a failed status | |
| `inherit` | `false`: start from empty word tables instead of the base's | `true` |

Canonical statuses: queued, created, sent, failed, delivered, read, and the side events deleted,
warning, canceled, retrying. Failure reasons: error, not_found, expired, rejected, rate_limited;
a failed word without a reason takes it from `error_reasons` by error code, else `error`.

Words match case- and accent-insensitively, with `_`, `-`, `.` and runs of spaces read as one
space, so `Number_Not_Found` is `number not found` and `Expiração` is `expiracao`. A status
field that only names the envelope (`{"event": "status", "data": {"status": "read"}}`: the word
`status`, `message status`, `messages.update`…) is skipped for the next status path.

Connection events are judged by their state, not their name alone: a channel event whose kind
is `logout`, `connected` or `connection` reads the item's `connection_state` fields, and a state
it knows (connected/open/conectado → `connected`, which resolves a logout; disconnected/close/
logout/desconectado → `logout`) decides; a state word of `channel_events` counts too. Without a
known state, `logout` and `connected` keep their name's meaning; `connection` (a name that says
nothing by itself) is ignored when no state is given, dead-lettered when the state is unknown;
transitional states (connecting, qrcode) are ignored.

A not-found report (a failed word with reason `not_found`) that carries no message id is a
channel event `number_not_found`: it raises the channel's `number_not_found` alert instead of
being dead-lettered. The word tables are merged over the base's: a word
the mapping puts in one table leaves the base's other tables, so an operator can move
`received` from `ignore` to `statuses`. A word in two tables of the same mapping is an error.
"""

from __future__ import annotations

import dataclasses
import re
import types
from collections.abc import Iterable, Mapping
from typing import Any

from schemas.envelope import RawWebhook
from schemas.errors import ConfigurationError
from streams.adapters._fields import as_text, event_time, load_json, normalize_word, zone
from streams.adapters.base import Batch, ChannelEvent, ParseResult, UnparseableWebhook, new_event
from streams.domain.status import FailureReason, Status

# One dotted part: a key (possibly empty before brackets) then any `[n]` / `[*]` steps.
_PART = re.compile(r"(?P<key>[^.\[\]]*)(?P<steps>(?:\[(?:\d+|\*)\])*)")
_STEP = re.compile(r"\[(\d+|\*)\]")

Step = str | int | None  # key, list index, every list element


@dataclasses.dataclass(frozen=True, slots=True)
class JsonPath:
    """A compiled dotted path; `values` returns every value it reaches (none if absent)."""

    text: str
    steps: tuple[Step, ...]

    @classmethod
    def parse(cls, text: str) -> JsonPath:
        """Compile `a.b[*].c`; ValueError says what is wrong."""
        if not text.strip():
            msg = "a path must not be empty"
            raise ValueError(msg)
        steps: list[Step] = []
        for part in text.split("."):
            match = _PART.fullmatch(part)
            if match is None or not part:
                msg = f"path {text!r} has an invalid part {part!r}"
                raise ValueError(msg)
            if match["key"]:
                steps.append(match["key"])
            for index in _STEP.findall(match["steps"]):
                steps.append(None if index == "*" else int(index))
        return cls(text=text, steps=tuple(steps))

    def values(self, doc: object) -> list[object]:
        """Every value at this path (wildcards fan out); missing steps yield nothing."""
        current: list[object] = [doc]
        for step in self.steps:
            reached: list[object] = []
            for value in current:
                if isinstance(step, str):
                    if isinstance(value, dict) and step in value:
                        reached.append(value[step])
                elif isinstance(value, list):
                    if step is None:
                        reached.extend(value)
                    elif step < len(value):
                        reached.append(value[step])
            current = reached
        return current


@dataclasses.dataclass(frozen=True, slots=True)
class StatusRule:
    """What one provider status word means."""

    status: Status
    reason: FailureReason | None = None


__all__ = ["DEFAULT_CONFIG", "GenericAdapter", "GenericConfig", "StatusRule", "load_generic_config", "normalize_word"]


def _frozen_map(mapping: Mapping[str, Any]) -> Mapping[str, Any]:
    return types.MappingProxyType({normalize_word(k): v for k, v in mapping.items()})


_EMPTY: Mapping[str, Any] = types.MappingProxyType({})


@dataclasses.dataclass(frozen=True, slots=True)
class GenericConfig:
    """Where a provider puts each field and what its words mean (see the module docstring)."""

    items_path: str = ""
    message_id: tuple[str, ...] = ("id", "message_id")
    status: tuple[str, ...] = ("status",)
    timestamp: tuple[str, ...] = ("timestamp",)
    error_code: tuple[str, ...] = ("error.code", "error_code")
    error_title: tuple[str, ...] = ("error.title", "error.message", "error_message")
    recipient: tuple[str, ...] = ("recipient", "recipient_id", "to")
    campaign: tuple[str, ...] = ("campaign.id", "campaign_id", "campaign")
    channel_event: tuple[str, ...] = ("event",)
    connection_state: tuple[str, ...] = (
        "state",
        "connection",
        "connection_state",
        "status",
        "data.state",
        "data.connection",
        "data.status",
    )
    timezone: str = "UTC"
    statuses: Mapping[str, StatusRule] = dataclasses.field(default_factory=dict)
    channel_events: Mapping[str, str] = dataclasses.field(default_factory=dict)
    ignore: frozenset[str] = frozenset()
    error_reasons: Mapping[str, FailureReason] = dataclasses.field(default_factory=dict)

    def __post_init__(self) -> None:
        for name in PATH_KEYS:
            paths = getattr(self, name)
            if not isinstance(paths, tuple) or not paths or not all(isinstance(p, str) for p in paths):
                msg = f"generic config: {name} must be a non-empty tuple of paths"
                raise ConfigurationError(msg)
            _compile(name, paths)
        if self.items_path:
            _compile("items_path", (self.items_path,))
        try:
            zone(self.timezone)
        except ValueError as exc:
            msg = f"generic config: {exc}"
            raise ConfigurationError(msg) from exc
        for word, rule in self.statuses.items():
            if not isinstance(rule, StatusRule):
                msg = f"generic config: statuses[{word!r}] must be a StatusRule"
                raise ConfigurationError(msg)
            if rule.reason is not None and rule.status is not Status.FAILED:
                msg = f"generic config: statuses[{word!r}] has a reason but status {rule.status.value!r} is not failed"
                raise ConfigurationError(msg)
        # Normalised once here so that lookups need no care and the tables cannot be mutated.
        object.__setattr__(self, "statuses", _frozen_map(self.statuses))
        object.__setattr__(self, "channel_events", _frozen_map(self.channel_events))
        object.__setattr__(self, "ignore", frozenset(normalize_word(w) for w in self.ignore))
        object.__setattr__(self, "error_reasons", types.MappingProxyType(dict(self.error_reasons)))
        _check_disjoint(self.statuses, self.channel_events, self.ignore)


PATH_KEYS = (
    "message_id",
    "status",
    "timestamp",
    "error_code",
    "error_title",
    "recipient",
    "campaign",
    "channel_event",
    "connection_state",
)
MAP_KEYS = ("statuses", "channel_events", "error_reasons")
KNOWN_KEYS = frozenset({"items_path", *PATH_KEYS, *MAP_KEYS, "ignore", "inherit", "timezone"})

# Channel event kinds about the WhatsApp connection: judged by the item's state when it has one.
LOGOUT = "logout"
CONNECTED = "connected"
CONNECTION = "connection"  # a name that says nothing by itself: the state decides
NUMBER_NOT_FOUND = "number_not_found"
_CONNECTION_KINDS = frozenset({LOGOUT, CONNECTED, CONNECTION})

# States a connection event reports (normalised words) → kind; None: a transition that changes
# nothing yet. Read only in connection events, so `open` or `closed` never mean anything elsewhere.
CONNECTION_STATES: Mapping[str, str | None] = types.MappingProxyType(
    {
        normalize_word(word): kind
        for words, kind in (
            (("connected", "open", "opened", "online", "authenticated", "logged in", "login", "inchat",
              "conectado", "conectada", "conexao aberta", "connection open"), CONNECTED),
            (("disconnected", "close", "closed", "logout", "logged out", "unpaired", "desconectado",
              "desconectada", "desconectou", "encerrada", "fechada", "connection closed", "conexao encerrada",
              "conexao fechada", "conexao perdida", "disconnect"), LOGOUT),
            (("connecting", "conectando", "reconnecting", "reconectando", "opening", "qrcode", "qr code",
              "qr", "pairing", "syncing", "starting", "initializing"), None),
        )
        for word in words
    }
)  # fmt: skip

# Values of a status field that only name the envelope, not a status: skipped for the next path.
ENVELOPE_WORDS = frozenset(
    normalize_word(w)
    for w in ("status", "statuses", "message status", "status update", "messages update", "message update", "ack")
)


def _compile(name: str, paths: Iterable[str]) -> tuple[JsonPath, ...]:
    try:
        return tuple(JsonPath.parse(p) for p in paths)
    except ValueError as exc:
        msg = f"generic config: {name}: {exc}"
        raise ConfigurationError(msg) from exc


def _check_disjoint(statuses: Iterable[str], channel_events: Iterable[str], ignore: Iterable[str]) -> None:
    tables = {"statuses": set(statuses), "channel_events": set(channel_events), "ignore": set(ignore)}
    names = list(tables)
    for i, first in enumerate(names):
        for second in names[i + 1 :]:
            both = tables[first] & tables[second]
            if both:
                msg = f"generic config: {sorted(both)} in both {first} and {second}: a word has one meaning"
                raise ConfigurationError(msg)


# Words most JSON providers use; the default of the `generic` provider.
COMMON_STATUSES: dict[str, StatusRule] = {
    "accepted": StatusRule(Status.QUEUED),
    "pending": StatusRule(Status.QUEUED),
    "queued": StatusRule(Status.QUEUED),
    "enqueued": StatusRule(Status.QUEUED),
    "created": StatusRule(Status.CREATED),
    "sending": StatusRule(Status.CREATED),
    "sent": StatusRule(Status.SENT),
    "delivered": StatusRule(Status.DELIVERED),
    "read": StatusRule(Status.READ),
    "seen": StatusRule(Status.READ),
    "failed": StatusRule(Status.FAILED),
    "error": StatusRule(Status.FAILED),
    "undelivered": StatusRule(Status.FAILED),
    "undeliverable": StatusRule(Status.FAILED),
    "rejected": StatusRule(Status.FAILED, FailureReason.REJECTED),
    "expired": StatusRule(Status.FAILED, FailureReason.EXPIRED),
    "number not found": StatusRule(Status.FAILED, FailureReason.NOT_FOUND),
    "invalid number": StatusRule(Status.FAILED, FailureReason.NOT_FOUND),
    "deleted": StatusRule(Status.DELETED),
    "warning": StatusRule(Status.WARNING),
    "canceled": StatusRule(Status.CANCELED),
    "cancelled": StatusRule(Status.CANCELED),
}

COMMON_CHANNEL_EVENTS: dict[str, str] = {
    "logout": LOGOUT,
    "logged out": LOGOUT,
    "connection closed": LOGOUT,
    "disconnected": LOGOUT,
    "connected": CONNECTED,
    "reconnected": CONNECTED,
    "connection": CONNECTION,
    "connection update": CONNECTION,
    "connection status": CONNECTION,
    "connection state": CONNECTION,
}

DEFAULT_CONFIG = GenericConfig(
    statuses=COMMON_STATUSES,
    channel_events=COMMON_CHANNEL_EVENTS,
    ignore=frozenset({"received", "inbound"}),
)


class GenericAdapter:
    """Parses any JSON provider described by a `GenericConfig`."""

    def __init__(self, name: str, config: GenericConfig = DEFAULT_CONFIG) -> None:
        self.name = name
        self.config = config
        self._items = _batch_path(config.items_path) if config.items_path else None
        self._paths = {key: _compile(key, getattr(config, key)) for key in PATH_KEYS}
        self._tz = zone(config.timezone)

    def parse(self, raw: RawWebhook) -> ParseResult:
        """Every status and channel event of one POST; each item of a batch stands alone."""
        batch = Batch()
        doc = load_json(raw.body)
        if self._items is None and not isinstance(doc, list):
            if not isinstance(doc, dict):
                msg = "body must be an object"
                raise UnparseableWebhook(msg)
            self._one(raw, doc, "body", batch)
            return batch.result()
        for where, item in self._items_of(doc):
            with batch.item(where, item):
                if not isinstance(item, dict):
                    msg = f"{where} must be an object"
                    raise UnparseableWebhook(msg)
                self._one(raw, item, where, batch)
        return batch.result()

    def _items_of(self, doc: object) -> list[tuple[str, object]]:
        """The batch's items with their positions: a bare list's elements, or what items_path finds."""
        if self._items is None:
            return [(f"body[{i}]", item) for i, item in enumerate(doc if isinstance(doc, list) else [doc])]
        found = self._items.values(doc)
        if not found:
            msg = f"body has nothing at {self._items.text!r}"
            raise UnparseableWebhook(msg)
        items: list[object] = []
        for value in found:
            items.extend(value if isinstance(value, list) else [value])
        return [(f"{self._items.text}#{i}", item) for i, item in enumerate(items)]

    def _one(self, raw: RawWebhook, item: dict[str, Any], where: str, batch: Batch) -> None:
        config = self.config
        word = self._status_word(item)
        for candidate in (word, self._text(item, "channel_event")):
            kind = config.channel_events.get(normalize_word(candidate)) if candidate is not None else None
            if candidate is None or kind is None:
                continue
            detail: str | None = candidate
            if kind in _CONNECTION_KINDS:
                kind, detail = self._connection(item, kind, candidate, where)
                if kind is None:
                    batch.ignored_reasons.append(detail)
                    return
            occurred_at, _ = self._time(raw, item, where)
            batch.channel_events.append(ChannelEvent(raw.provider, raw.channel, kind, occurred_at, detail=detail))
            return
        if word is None:
            msg = f"{where} has no status at {_texts(self._paths['status'])}"
            raise UnparseableWebhook(msg)
        key = normalize_word(word)
        if key in config.ignore:
            batch.ignored_reasons.append(f"status {word!r} ignored by configuration")
            return
        rule = config.statuses.get(key)
        if rule is None:
            msg = f"{where}: status {word!r} is not a known {self.name} status"
            raise UnparseableWebhook(msg)
        code = self._text(item, "error_code")
        reason = None
        if rule.status is Status.FAILED:
            reason = rule.reason or config.error_reasons.get(code or "", FailureReason.ERROR)
        message_id = self._text(item, "message_id")
        if message_id is None and reason is FailureReason.NOT_FOUND:
            # "Number not found" for a number no message could be sent to: no message to track,
            # but the channel's alert must still say so (issue 16).
            occurred_at, _ = self._time(raw, item, where)
            recipient = self._text(item, "recipient")
            detail = f"{word}: {recipient}" if recipient else word
            batch.channel_events.append(
                ChannelEvent(raw.provider, raw.channel, NUMBER_NOT_FOUND, occurred_at, detail=detail)
            )
            return
        if message_id is None:
            msg = f"{where} has no message id at {_texts(self._paths['message_id'])}"
            raise UnparseableWebhook(msg)
        occurred_at, flagged = self._time(raw, item, where)
        batch.events.append(
            new_event(
                raw,
                message_id=message_id,
                status=rule.status,
                provider_status=word,
                occurred_at=occurred_at,
                time_from_receipt=flagged,
                recipient=self._text(item, "recipient"),
                campaign=self._text(item, "campaign"),
                failure_reason=reason,
                error_code=code,
                error_title=self._text(item, "error_title"),
            )
        )

    def _status_word(self, item: dict[str, Any]) -> str | None:
        """The first status word along the status paths, skipping values that only name the
        envelope (`{"event": "status", "data": {"status": "Entregue"}}`)."""
        config = self.config
        for path in self._paths["status"]:
            for value in path.values(item):
                text = as_text(value)
                if text is None or not text.strip():
                    continue
                key = normalize_word(text)
                known = key in config.statuses or key in config.channel_events or key in config.ignore
                if key in ENVELOPE_WORDS and not known:
                    continue
                return text.strip()
        return None

    def _connection(self, item: dict[str, Any], kind: str, name: str, where: str) -> tuple[str | None, str]:
        """(kind, detail) of a connection event judged by its state; kind None: nothing to
        report (a transition, or a bare `connection` event without a state), detail says why."""
        unknown = None
        for path in self._paths["connection_state"]:
            for value in path.values(item):
                text = as_text(value)
                if text is None or not text.strip():
                    continue
                key = normalize_word(text)
                if key == normalize_word(name):
                    continue  # the name itself, read again through the status field
                if key in CONNECTION_STATES:
                    judged = CONNECTION_STATES[key]
                    if judged is None:
                        return None, f"connection event {name!r} in state {text!r}: not a change of connection"
                    return judged, f"{name}: {text.strip()}"
                configured = self.config.channel_events.get(key)
                if configured in (LOGOUT, CONNECTED):
                    return configured, f"{name}: {text.strip()}"
                unknown = unknown or text.strip()
        if kind != CONNECTION:
            return kind, name
        if unknown is not None:
            msg = (
                f"{where}: connection event {name!r} has an unknown state {unknown!r} "
                "(give it a meaning in the channel's channel_events: connected or logout)"
            )
            raise UnparseableWebhook(msg)
        return None, f"connection event {name!r} without a state"

    def _text(self, item: dict[str, Any], key: str) -> str | None:
        """The first scalar found along the field's paths, as text."""
        for path in self._paths[key]:
            for value in path.values(item):
                text = as_text(value)
                if text is not None:
                    return text.strip() or None
        return None

    def _time(self, raw: RawWebhook, item: dict[str, Any], where: str) -> tuple[int, bool]:
        for path in self._paths["timestamp"]:
            for value in path.values(item):
                if value is not None and value != "":
                    return event_time(value, raw.received_at, f"{where}.{path.text}", self._tz)
        return raw.received_at, True


def _batch_path(text: str) -> JsonPath:
    """The items path without a trailing `[*]`: its lists are expanded anyway, and an empty
    list must read as an empty batch, not as a missing one."""
    path = JsonPath.parse(text)
    if path.steps and path.steps[-1] is None:
        return JsonPath(text=text, steps=path.steps[:-1])
    return path


def _texts(paths: Iterable[JsonPath]) -> str:
    return ", ".join(repr(p.text) for p in paths)


# --- building a config from a plain mapping ----------------------------------------------------


def load_generic_config(mapping: Mapping[str, Any], base: GenericConfig = DEFAULT_CONFIG) -> GenericConfig:
    """A config from a plain mapping (TOML/YAML table) over `base`; ConfigurationError says what is wrong."""
    if not isinstance(mapping, Mapping):
        msg = f"generic config must be a table of keys, got {type(mapping).__name__}"
        raise ConfigurationError(msg)
    unknown = sorted(str(k) for k in mapping if k not in KNOWN_KEYS)
    if unknown:
        msg = f"generic config: unknown key(s) {unknown}; known keys are {sorted(KNOWN_KEYS)}"
        raise ConfigurationError(msg)
    inherit = mapping.get("inherit", True)
    if not isinstance(inherit, bool):
        msg = f"generic config: inherit must be true or false, got {inherit!r}"
        raise ConfigurationError(msg)
    if not inherit:
        base = dataclasses.replace(
            base, statuses=_EMPTY, channel_events=_EMPTY, ignore=frozenset(), error_reasons=_EMPTY
        )
    changes: dict[str, Any] = {}
    if "items_path" in mapping:
        value = mapping["items_path"]
        if not isinstance(value, str):
            msg = f"generic config: items_path must be a path string, got {value!r}"
            raise ConfigurationError(msg)
        changes["items_path"] = value.strip()
    if "timezone" in mapping:
        value = mapping["timezone"]
        try:
            zone(value)
        except ValueError as exc:
            msg = f"generic config: {exc}"
            raise ConfigurationError(msg) from exc
        changes["timezone"] = value.strip()
    for key in PATH_KEYS:
        if key in mapping:
            changes[key] = _paths(key, mapping[key])

    statuses = {normalize_word(str(w)): _rule(str(w), v) for w, v in _table("statuses", mapping).items()}
    channel = {normalize_word(str(w)): _kind(str(w), v) for w, v in _table("channel_events", mapping).items()}
    ignore = {normalize_word(w) for w in _words("ignore", mapping.get("ignore", []))}
    _check_disjoint(statuses, channel, ignore)
    # A word the mapping gives a meaning leaves the base's other tables (module docstring).
    changes["statuses"] = {w: r for w, r in base.statuses.items() if w not in channel and w not in ignore} | statuses
    changes["channel_events"] = {
        w: k for w, k in base.channel_events.items() if w not in statuses and w not in ignore
    } | channel
    changes["ignore"] = frozenset(w for w in base.ignore if w not in statuses and w not in channel) | ignore
    reasons = {str(c).strip(): _reason(f"error_reasons[{c!r}]", v) for c, v in _table("error_reasons", mapping).items()}
    changes["error_reasons"] = dict(base.error_reasons) | reasons
    if not changes["statuses"]:
        msg = "generic config: statuses is empty, so no webhook could be parsed"
        raise ConfigurationError(msg)
    return dataclasses.replace(base, **changes)


def _paths(key: str, value: object) -> tuple[str, ...]:
    paths = (value,) if isinstance(value, str) else value
    if not isinstance(paths, list | tuple) or not paths or not all(isinstance(p, str) for p in paths):
        msg = f"generic config: {key} must be a path or a non-empty list of paths, got {value!r}"
        raise ConfigurationError(msg)
    _compile(key, paths)
    return tuple(p.strip() for p in paths)


def _table(key: str, mapping: Mapping[str, Any]) -> Mapping[str, Any]:
    value = mapping.get(key, {})
    if not isinstance(value, Mapping):
        msg = f"generic config: {key} must be a table of word = value, got {type(value).__name__}"
        raise ConfigurationError(msg)
    for word in value:
        if not isinstance(word, str | int) or not normalize_word(str(word)):
            msg = f"generic config: {key} has an empty or non-text key {word!r}"
            raise ConfigurationError(msg)
    return value


def _words(key: str, value: object) -> list[str]:
    if not isinstance(value, list | tuple) or not all(isinstance(w, str) and normalize_word(w) for w in value):
        msg = f"generic config: {key} must be a list of non-empty words, got {value!r}"
        raise ConfigurationError(msg)
    return list(value)


_STATUS_NAMES = ", ".join(s.value for s in Status)
_REASON_NAMES = ", ".join(r.value for r in FailureReason)


def _rule(word: str, value: object) -> StatusRule:
    where = f"statuses[{word!r}]"
    if isinstance(value, str):
        name, _, reason_name = value.partition(":")
        spec: Mapping[str, Any] = {"status": name, "reason": reason_name or None}
    elif isinstance(value, Mapping):
        extra = sorted(set(value) - {"status", "reason"})
        if extra:
            msg = f"generic config: {where} has unknown key(s) {extra}; use status and reason"
            raise ConfigurationError(msg)
        spec = value
    else:
        msg = f"generic config: {where} must be a status name or a table {{status, reason}}, got {value!r}"
        raise ConfigurationError(msg)
    status_name = spec.get("status")
    try:
        status = Status(str(status_name).strip().lower())
    except ValueError as exc:
        msg = f"generic config: {where}: {status_name!r} is not a canonical status ({_STATUS_NAMES})"
        raise ConfigurationError(msg) from exc
    failure = None if spec.get("reason") is None else _reason(where, spec["reason"])
    if failure is not None and status is not Status.FAILED:
        msg = f"generic config: {where}: a reason only goes with failed, not {status.value!r}"
        raise ConfigurationError(msg)
    return StatusRule(status, failure)


def _reason(where: str, value: object) -> FailureReason:
    try:
        return FailureReason(str(value).strip().lower())
    except ValueError as exc:
        msg = f"generic config: {where}: {value!r} is not a failure reason ({_REASON_NAMES})"
        raise ConfigurationError(msg) from exc


def _kind(word: str, value: object) -> str:
    if not isinstance(value, str) or not value.strip():
        msg = f"generic config: channel_events[{word!r}] must name a channel event kind, got {value!r}"
        raise ConfigurationError(msg)
    return value.strip()
