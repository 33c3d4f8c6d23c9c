"""Small helpers every adapter uses to read untrusted JSON strictly."""

from __future__ import annotations

import datetime as dt
import math
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


def load_json(body: bytes) -> object:
    """The body as any JSON value (object or list: some providers batch as a bare array)."""
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        msg = f"body is not valid JSON: {exc}"
        raise UnparseableWebhook(msg) from exc


def as_text(value: object) -> str | None:
    """A JSON scalar as text (numbers too), None for anything else or an empty string."""
    if isinstance(value, str):
        return value or None
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return None


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


# Epoch values at or above this are milliseconds (year 2001 in ms, year 33658 in seconds).
_MS_THRESHOLD = 1_000_000_000_000
# 9999-12-31T23:59:59.999Z: later times are nonsense, and a huge one (1e300) does not fit the
# Avro long of every derived record: it crashed the whole normalize batch (fuzz campaign find).
MAX_EPOCH_MS = 253_402_300_799_999


def to_epoch_ms(value: object, where: str) -> int:
    """Any provider time to UTC epoch milliseconds.

    Accepts epoch seconds or milliseconds (int, float or digit string; the magnitude tells
    which) and ISO-8601 with `Z`, `+03:00` or `-0300` offsets. A time without a zone is
    refused rather than guessed.
    """
    if isinstance(value, bool) or value is None:
        msg = f"{where} is missing"
        raise UnparseableWebhook(msg)
    if isinstance(value, int | float):
        return _epoch_number_to_ms(float(value), where)
    if isinstance(value, str):
        text = value.strip()
        try:
            return _epoch_number_to_ms(float(text), where)
        except ValueError:
            pass
        return _iso_to_ms(text, where)
    msg = f"{where} must be a time, got {type(value).__name__}"
    raise UnparseableWebhook(msg)


def _epoch_number_to_ms(number: float, where: str) -> int:
    if not math.isfinite(number) or number < 0:
        msg = f"{where} is not a valid epoch time: {number!r}"
        raise UnparseableWebhook(msg)
    ms = int(number) if number >= _MS_THRESHOLD else round(number * 1000)
    if ms > MAX_EPOCH_MS:
        msg = f"{where} is after the year 9999: {number!r}"
        raise UnparseableWebhook(msg)
    return ms


def _iso_to_ms(text: str, where: str) -> int:
    candidate = text.replace("Z", "+00:00").replace("z", "+00:00")
    # Python < 3.11 style offsets without a colon (`-0300`) are accepted by fromisoformat in
    # 3.11 only in some shapes; normalise the trailing offset explicitly.
    if len(candidate) > 5 and candidate[-5] in "+-" and candidate[-4:].isdigit():
        candidate = f"{candidate[:-2]}:{candidate[-2:]}"
    try:
        parsed = dt.datetime.fromisoformat(candidate)
    except ValueError as exc:
        msg = f"{where} is not a recognised time: {text!r}"
        raise UnparseableWebhook(msg) from exc
    if parsed.tzinfo is None:
        msg = f"{where} has no time zone: {text!r}"
        raise UnparseableWebhook(msg)
    return int(parsed.timestamp() * 1000)


def event_time(value: object, received_at: int, where: str) -> tuple[int, bool]:
    """(epoch ms, flagged): a missing time falls back to received_at and is flagged."""
    if value is None or value == "":
        return received_at, True
    return to_epoch_ms(value, where), False
