"""Small helpers every adapter uses to read untrusted JSON strictly."""

from __future__ import annotations

from typing import Any

import orjson

from streams.adapters.base import UnparseableWebhook


def load_json_object(body: bytes) -> dict[str, Any]:
    """The body as a JSON object, or UnparseableWebhook."""
    try:
        value = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        msg = f"body is not valid JSON: {exc}"
        raise UnparseableWebhook(msg) from exc
    if not isinstance(value, dict):
        msg = f"body is a JSON {type(value).__name__}, expected an object"
        raise UnparseableWebhook(msg)
    return value


def require_str(obj: dict[str, Any], key: str, where: str) -> str:
    """A non-empty string field (numbers are accepted and turned into text)."""
    value = obj.get(key)
    if isinstance(value, bool) or value is None:
        msg = f"{where}.{key} is missing"
        raise UnparseableWebhook(msg)
    if isinstance(value, int | float):
        value = str(value)
    if not isinstance(value, str) or not value:
        msg = f"{where}.{key} must be a non-empty string"
        raise UnparseableWebhook(msg)
    return value


def optional_str(obj: dict[str, Any], key: str) -> str | None:
    """A string field if present, numbers as text, anything else None."""
    value = obj.get(key)
    if isinstance(value, str):
        return value or None
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return None


def list_of_objects(obj: dict[str, Any], key: str, where: str) -> list[dict[str, Any]]:
    """A list of JSON objects (missing = empty)."""
    value = obj.get(key, [])
    if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
        msg = f"{where}.{key} must be a list of objects"
        raise UnparseableWebhook(msg)
    return value


def epoch_seconds_to_ms(value: object, where: str) -> int:
    """Epoch seconds given as a number or a digit string, to milliseconds."""
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip()) * 1000
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value * 1000
    msg = f"{where} must be epoch seconds, got {value!r}"
    raise UnparseableWebhook(msg)
