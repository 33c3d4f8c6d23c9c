"""What a reload of the channels file changes: two configurations compared, nothing else.

The receiver and the worker log this summary when they swap in a new configuration, and
`statusflow check-config NEW --against CURRENT` prints it before an operator swaps the file.
Entries are compared by name in every list of named tables of the file (`channels`, and any
other such as `tenants`), field by field, nested tables and adapter options flattened into
dotted paths (`auth.secret`, `options.timezone`). A secret is never rendered, not even in part:
a changed one is only said to be `set`, `rotated` or `removed`.

Pure: no I/O, no logging; the caller decides what to do with the result.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable, Mapping
from typing import Any

from pydantic import BaseModel, SecretStr

#: Longest rendering of one value in a summary (adapter options can be long tables).
MAX_VALUE_CHARS = 60

#: Fields of a configuration that say where it came from, not what it configures.
NOT_CONFIGURATION = frozenset({"source"})


@dataclasses.dataclass(frozen=True, slots=True)
class FieldChange:
    """One setting of an entry that differs: `before`/`after` are renderings (None: unset)."""

    path: str
    before: str | None
    after: str | None
    secret: bool = False

    def describe(self) -> str:
        """`statuses: read -> delivered, read`; a secret only as set, rotated or removed."""
        if self.secret:
            if self.before is None:
                return f"{self.path} set"
            return f"{self.path} removed" if self.after is None else f"{self.path} rotated"
        return f"{self.path}: {self.before or 'unset'} -> {self.after or 'unset'}"


@dataclasses.dataclass(frozen=True, slots=True)
class EntryChange:
    """A named entry present in both configurations whose settings differ."""

    kind: str
    name: str
    fields: tuple[FieldChange, ...]


@dataclasses.dataclass(frozen=True, slots=True)
class ConfigDiff:
    """Entries added, removed and changed, each as (kind, name): kind is `channel`, `tenant`, ..."""

    added: tuple[tuple[str, str], ...] = ()
    removed: tuple[tuple[str, str], ...] = ()
    changed: tuple[EntryChange, ...] = ()

    @property
    def empty(self) -> bool:
        """True when a reload would change nothing."""
        return not (self.added or self.removed or self.changed)

    def lines(self) -> list[str]:
        """One line per entry: `+ channel acme-wa`, `- channel old`, `~ channel shop: auth.secret rotated`."""
        out = [f"+ {kind} {name}" for kind, name in self.added]
        out += [f"- {kind} {name}" for kind, name in self.removed]
        out += [
            f"~ {change.kind} {change.name}: {'; '.join(f.describe() for f in change.fields)}"
            for change in self.changed
        ]
        return out

    def summary(self) -> str:
        """The whole diff on one line, for a log record (no secret, only that one changed)."""
        if self.empty:
            return "no change"
        parts = []
        if self.added:
            parts.append("added " + ", ".join(f"{kind} {name}" for kind, name in self.added))
        if self.removed:
            parts.append("removed " + ", ".join(f"{kind} {name}" for kind, name in self.removed))
        for change in self.changed:
            parts.append(f"changed {change.kind} {change.name} ({', '.join(f.describe() for f in change.fields)})")
        return "; ".join(parts)


def diff_configs(before: BaseModel, after: BaseModel) -> ConfigDiff:
    """What changes from `before` to `after` (two ChannelsConfig, or any model of the same shape).

    Lists of named entries are compared by name; any other top-level setting (a table such as
    `[operator]`) is compared as one entry named after its key.
    """
    added: list[tuple[str, str]] = []
    removed: list[tuple[str, str]] = []
    changed: list[EntryChange] = []
    for key in type(after).model_fields:
        if key in NOT_CONFIGURATION:
            continue
        old, new = getattr(before, key, None), getattr(after, key, None)
        if _is_named_list(old) or _is_named_list(new):
            kind = key.removesuffix("s")
            olds, news = _by_name(old or ()), _by_name(new or ())
            added += [(kind, name) for name in news if name not in olds]
            removed += [(kind, name) for name in olds if name not in news]
            for name in olds.keys() & news.keys():
                fields = diff_fields(olds[name], news[name])
                if fields:
                    changed.append(EntryChange(kind, name, fields))
        else:
            fields = _diff_flat(_flatten(old, ""), _flatten(new, ""))
            if fields:
                changed.append(EntryChange("setting", key, fields))
    return ConfigDiff(
        added=tuple(sorted(added)),
        removed=tuple(sorted(removed)),
        changed=tuple(sorted(changed, key=lambda c: (c.kind, c.name))),
    )


def diff_fields(before: BaseModel, after: BaseModel) -> tuple[FieldChange, ...]:
    """The settings of one entry that differ, by dotted path, sorted."""
    return _diff_flat(_flatten(before, ""), _flatten(after, ""))


def _diff_flat(old: Mapping[str, Any], new: Mapping[str, Any]) -> tuple[FieldChange, ...]:
    changes = []
    for path in sorted(old.keys() | new.keys()):
        a, b = old.get(path), new.get(path)
        if isinstance(a, SecretStr) or isinstance(b, SecretStr):
            if _secret_value(a) != _secret_value(b):
                changes.append(
                    FieldChange(path, None if a is None else "***", None if b is None else "***", secret=True)
                )
        elif a != b:
            changes.append(FieldChange(path, _render(a), _render(b)))
    return tuple(changes)


def _is_named_list(value: object) -> bool:
    return isinstance(value, tuple) and bool(value) and all(isinstance(getattr(v, "name", None), str) for v in value)


def _by_name(entries: Iterable[Any]) -> dict[str, BaseModel]:
    return {entry.name: entry for entry in entries}


def _flatten(value: object, prefix: str) -> dict[str, Any]:
    """Nested models and mappings as {dotted path: leaf}; unset leaves are left out, so that a
    table that appears or goes shows as its settings set or unset."""
    if value is None:
        return {}
    if isinstance(value, BaseModel):
        out: dict[str, Any] = {}
        for key in type(value).model_fields:
            out.update(_flatten(getattr(value, key), f"{prefix}{key}."))
        return out
    if isinstance(value, Mapping):
        out = {}
        for key, item in value.items():
            out.update(_flatten(item, f"{prefix}{key}."))
        return out
    path = prefix.rstrip(".")
    if isinstance(value, frozenset | set):
        return {path: tuple(sorted(value))}
    if isinstance(value, list):
        return {path: tuple(value)}
    return {path: value}


def _secret_value(value: object) -> str | None:
    return value.get_secret_value() if isinstance(value, SecretStr) else None


def _render(value: object) -> str | None:
    if value is None:
        return None
    if isinstance(value, tuple):
        text = ", ".join(str(v) for v in value)
    elif isinstance(value, str):
        text = value
    else:
        text = json.dumps(value, default=str, sort_keys=True)
    return text if len(text) <= MAX_VALUE_CHARS else text[: MAX_VALUE_CHARS - 1] + "…"


@dataclasses.dataclass(frozen=True, slots=True)
class FileStamp:
    """What `stat` says of the channels file: a write or a rename-over changes one of these."""

    inode: int
    size: int
    mtime_ns: int
    ctime_ns: int


@dataclasses.dataclass
class ChangeDetector:
    """Decides, from one stamp per poll, when the channels file should be read again.

    A change is acted on once the file has kept the same stamp for two polls in a row: an editor
    or a copy that writes the file in several steps is then read once, when done, instead of
    half-written (which would count as a failed reload). A stamp read once is not read again,
    so a broken file is reported once, not at every poll. `None` stands for a missing file.
    """

    read: FileStamp | None
    seen: FileStamp | None = None

    def __post_init__(self) -> None:
        self.seen = self.read

    def observe(self, stamp: FileStamp | None) -> bool:
        """Feed the stamp of this poll; True when the file is to be read now."""
        settled = stamp == self.seen
        self.seen = stamp
        if settled and stamp != self.read:
            self.read = stamp
            return True
        return False
