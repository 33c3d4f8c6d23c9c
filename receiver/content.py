"""What a webhook body is: its declared content type, or the one sniffed when it declares none.

A webhook forwarder sends no Content-Type, or `text/plain` / `application/octet-stream`,
unless its user adds the header. Such a body is sniffed among the provider's own content types:
JSON first (an object or a list), then a form for the providers that take forms. A declared
type the provider does not take is refused as before: the sender said what it sends.
"""

from __future__ import annotations

import dataclasses
from urllib.parse import parse_qsl

import orjson

from receiver.errors import Rejected
from receiver.providers import FORM, FORM_TYPE, GENERIC, JSON_TYPE, ProviderSpec


@dataclasses.dataclass(frozen=True, slots=True)
class Content:
    """How a body is read: its media type, the header it replaced when sniffed, a form's fields."""

    content_type: str
    sniffed_from: str | None = None
    form: list[tuple[str, str]] = dataclasses.field(default_factory=list)


def check_declared(spec: ProviderSpec, declared: str) -> None:
    """415 before the body is read, unless the provider takes `declared` or it is to be sniffed."""
    if declared not in spec.content_types and declared not in GENERIC:
        raise Rejected(415, f"{spec.name} webhooks must be {_allowed(spec)}, not {declared}")


def read(spec: ProviderSpec, declared: str, header: str, body: bytes) -> Content:
    """The body's content: as declared (400 when malformed), or sniffed (415 when it is neither).

    `declared` is the media type aiohttp read from the header (`application/octet-stream` when
    there is none), `header` the Content-Type header as sent ("" when there is none).
    """
    if declared in spec.content_types:
        return Content(declared, form=parse(declared, body))
    sniffed = sniff(spec, body)
    if sniffed is None:
        sent = f"sent as {header}" if header else "sent without a Content-Type"
        raise Rejected(415, f"{spec.name} webhooks must be {_allowed(spec)}: this body ({sent}) is neither")
    return dataclasses.replace(sniffed, sniffed_from=header)


def sniff(spec: ProviderSpec, body: bytes) -> Content | None:
    """The provider's content type the body parses as, JSON first; None when none fits."""
    if JSON_TYPE in spec.content_types and _is_json(body):
        return Content(JSON_TYPE)
    if FORM_TYPE in spec.content_types:
        form = _form(body)
        if form:
            return Content(FORM_TYPE, form=form)
    return None


def parse(content_type: str, body: bytes) -> list[tuple[str, str]]:
    """400 for a malformed body; the form's parameters (signatures are computed over them)."""
    if content_type not in FORM:
        try:
            orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            raise Rejected(400, f"malformed JSON: {exc}") from exc
        return []
    try:
        return parse_qsl(body.decode("utf-8"), strict_parsing=bool(body), keep_blank_values=True)
    except (UnicodeDecodeError, ValueError) as exc:
        raise Rejected(400, f"malformed form body: {exc}") from exc


def _is_json(body: bytes) -> bool:
    try:
        return isinstance(orjson.loads(body), dict | list)
    except orjson.JSONDecodeError:
        return False


def _form(body: bytes) -> list[tuple[str, str]]:
    """A form's fields, or [] when the body is not one (not empty, every field `name=value`)."""
    try:
        fields = parse(FORM_TYPE, body)
    except Rejected:
        return []
    return fields if all(name for name, _ in fields) else []


def _allowed(spec: ProviderSpec) -> str:
    names = {JSON_TYPE: "JSON (application/json)", FORM_TYPE: f"a form ({FORM_TYPE})"}
    return " or ".join(names.get(t, t) for t in sorted(spec.content_types))
