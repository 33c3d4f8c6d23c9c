"""Form-encoded bodies read as the JSON document they stand for, for providers that post forms.

A webhook forwarder that posts a form (`application/x-www-form-urlencoded`) carries a
provider's JSON shape in one of three ways, all read here into the same document:

* a field whose value is a JSON object or list holds that structure: `payload={"entry": […]}`,
  `statuses=[{…}]`;
* bracketed names nest, as web frameworks write them (`statuses[0][id]=…&statuses[0][status]=read`):
  a name is a key, a number a position in a list (positions are kept in order, gaps closed),
  `[]` the next position;
* any other field is a flat key: `id=…&status=D&timestamp=…` (a courier-style body).

A form whose only field holds an object (as JSON or bracketed: `payload={…}`,
`data[statuses][0][id]=…`) is that object: the wrapper's name says nothing. Every value stays
text, as a form has no numbers; the adapters read numbers from text anyway. A name given twice
with different values is refused, as is a name that is both a value and a group.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qsl

import orjson

from schemas.envelope import RawWebhook
from streams.adapters._fields import load_json
from streams.adapters.base import UnparseableWebhook

FORM = "application/x-www-form-urlencoded"

# A Cloud API body with a few statuses in bracketed names has a few hundred fields.
MAX_FIELDS = 1_000
MAX_DEPTH = 12
_MAX_INDEX_DIGITS = 6

_NAME = re.compile(r"(?P<head>[^\[\]]+)(?P<tail>(?:\[[^\[\]]*\])*)")
_SEGMENT = re.compile(r"\[([^\[\]]*)\]")


class _Group(dict[str | int, Any]):
    """A nesting made by bracketed names (a JSON value in a field is opaque, never a group)."""


def load_document(raw: RawWebhook) -> object:
    """The body as the JSON it is, or the document its form stands for (by the envelope's content type)."""
    if raw.content_type == FORM:
        return load_form(raw.body)
    return load_json(raw.body)


def load_form(body: bytes) -> dict[str, Any]:
    """A form body as a document (module docstring); UnparseableWebhook says what is wrong."""
    try:
        pairs = parse_qsl(
            body.decode("utf-8"),
            keep_blank_values=True,
            strict_parsing=True,
            errors="strict",
            max_num_fields=MAX_FIELDS,
        )
    except UnicodeDecodeError as exc:
        msg = f"form body is not UTF-8: {exc}"
        raise UnparseableWebhook(msg) from exc
    except ValueError as exc:
        msg = f"body is not a valid form: {exc}"
        raise UnparseableWebhook(msg) from exc
    if not pairs:
        msg = "form body has no fields"
        raise UnparseableWebhook(msg)
    root = _Group()
    for name, value in pairs:
        _put(root, _path(name), _value(value), name)
    doc = _plain(root)
    if not isinstance(doc, dict):
        msg = "form body is a list of values, expected named fields"
        raise UnparseableWebhook(msg)
    if len(doc) == 1:
        (only,) = doc.values()
        if isinstance(only, dict):
            return only
    return doc


def _path(name: str) -> list[str]:
    """`a[b][0]` → ["a", "b", "0"]; a name that is not bracketed as a whole is one key."""
    match = _NAME.fullmatch(name)
    if match is None:
        return [name]
    path = [match["head"], *_SEGMENT.findall(match["tail"])]
    if len(path) > MAX_DEPTH:
        msg = f"form field {name[:60]!r} is nested more than {MAX_DEPTH} deep"
        raise UnparseableWebhook(msg)
    return path


def _value(text: str) -> object:
    """A field's value: the JSON object or list it holds, else the text."""
    stripped = text.strip()
    if stripped[:1] in ("{", "["):
        try:
            decoded = orjson.loads(stripped)
        except orjson.JSONDecodeError:
            return text
        if isinstance(decoded, dict | list):
            return decoded
    return text


def _key(group: _Group, segment: str) -> str | int:
    if segment == "":
        return sum(1 for k in group if isinstance(k, int))
    if segment.isascii() and segment.isdigit() and len(segment) <= _MAX_INDEX_DIGITS:
        return int(segment)
    return segment


def _put(root: _Group, path: list[str], value: object, name: str) -> None:
    node = root
    for segment in path[:-1]:
        key = _key(node, segment)
        child = node.get(key)
        if child is None:
            child = node[key] = _Group()
        elif not isinstance(child, _Group):
            msg = f"form field {name[:60]!r} nests under a field that has a value"
            raise UnparseableWebhook(msg)
        node = child
    key = _key(node, path[-1])
    if key in node and node[key] != value:
        what = "is also a group of fields" if isinstance(node[key], _Group) else "has conflicting values"
        msg = f"form field {name[:60]!r} {what}"
        raise UnparseableWebhook(msg)
    node[key] = value


def _plain(node: object) -> object:
    """Groups as plain dicts, or lists when every key is a position (in order, gaps closed)."""
    if not isinstance(node, _Group):
        return node
    positions = sorted(k for k in node if isinstance(k, int))
    if node and len(positions) == len(node):
        return [_plain(node[k]) for k in positions]
    return {str(k): _plain(v) for k, v in node.items()}
