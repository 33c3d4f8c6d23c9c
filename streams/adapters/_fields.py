"""Small helpers every adapter uses to read untrusted JSON strictly."""

from __future__ import annotations

import datetime as dt
import math
import re
import unicodedata
import zoneinfo
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


def to_epoch_ms(value: object, where: str, tz: dt.tzinfo | None = None) -> int:
    """Any provider time to UTC epoch milliseconds.

    Accepts epoch seconds or milliseconds (int, float or digit string; the magnitude tells
    which), ISO-8601 with `Z`, `+03:00` or `-0300` offsets (a space before the offset or a
    trailing `UTC`/`GMT` too), and day-first dates `15/06/2025 20:20:20` (also with `-` or `.`,
    without seconds, with a fraction or an offset) or year-first `2025/06/15 20:20:20`.

    A time without a zone is read in `tz`, the channel's time zone (see `zone`), for providers
    that send local times; without `tz` it is refused rather than guessed.
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
        return _text_to_ms(text, where, tz)
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


_CLOCK = (
    r"(?:(?:[ T]+|,\s*)(?P<hour>\d{1,2}):(?P<minute>\d{2})"
    r"(?::(?P<second>\d{2})(?:[.,](?P<fraction>\d{1,9}))?)?)?"
    r"\s*(?P<zone>Z|[+-]\d{2}(?::?\d{2})?)?"
)
# 15/06/2025 20:20:20 (Brazil, most of Latin America and Europe: day first; 06/15/2025 is
# refused, not misread, as month 15 does not exist), and 2025/06/15 20:20:20.
_DAY_FIRST = re.compile(r"(?P<day>\d{1,2})(?P<sep>[/.-])(?P<month>\d{1,2})(?P=sep)(?P<year>\d{4})" + _CLOCK)
_YEAR_FIRST = re.compile(r"(?P<year>\d{4})(?P<sep>[/.])(?P<month>\d{1,2})(?P=sep)(?P<day>\d{1,2})" + _CLOCK)
_UTC_WORD = re.compile(r"\s*(?:UTC|GMT)$", re.IGNORECASE)
_SPACED_OFFSET = re.compile(r"\s+([+-]\d{2}:?\d{2}|Z)$")


def _text_to_ms(text: str, where: str, tz: dt.tzinfo | None) -> int:
    match = _DAY_FIRST.fullmatch(text) or _YEAR_FIRST.fullmatch(text)
    try:
        parsed = _from_parts(match) if match is not None else _from_iso(text)
    except (ValueError, OverflowError) as exc:
        msg = f"{where} is not a recognised time: {text!r}"
        raise UnparseableWebhook(msg) from exc
    if parsed.tzinfo is None:
        if tz is None:
            msg = f"{where} has no time zone: {text!r}"
            raise UnparseableWebhook(msg)
        parsed = parsed.replace(tzinfo=tz)
    try:
        ms = int(parsed.timestamp() * 1000)
    except (ValueError, OverflowError) as exc:
        msg = f"{where} is not a recognised time: {text!r}"
        raise UnparseableWebhook(msg) from exc
    if ms > MAX_EPOCH_MS:
        msg = f"{where} is after the year 9999: {text!r}"
        raise UnparseableWebhook(msg)
    return ms


def _from_parts(match: re.Match[str]) -> dt.datetime:
    fraction = (match["fraction"] or "")[:6].ljust(6, "0")
    return dt.datetime(
        int(match["year"]),
        int(match["month"]),
        int(match["day"]),
        int(match["hour"] or 0),
        int(match["minute"] or 0),
        int(match["second"] or 0),
        int(fraction),
        tzinfo=_offset(match["zone"]) if match["zone"] else None,
    )


def _from_iso(text: str) -> dt.datetime:
    candidate = _UTC_WORD.sub("+00:00", text)
    candidate = _SPACED_OFFSET.sub(r"\1", candidate)
    candidate = candidate.replace("Z", "+00:00").replace("z", "+00:00")
    # Python < 3.11 style offsets without a colon (`-0300`) are accepted by fromisoformat in
    # 3.11 only in some shapes; normalise the trailing offset explicitly.
    if len(candidate) > 5 and candidate[-5] in "+-" and candidate[-4:].isdigit():
        candidate = f"{candidate[:-2]}:{candidate[-2:]}"
    return dt.datetime.fromisoformat(candidate)


def _offset(text: str) -> dt.tzinfo:
    if text == "Z":
        return dt.UTC
    digits = text[1:].replace(":", "").ljust(4, "0")
    minutes = int(digits[:2]) * 60 + int(digits[2:])
    return dt.timezone(dt.timedelta(minutes=minutes if text[0] == "+" else -minutes))


_FIXED_OFFSET = re.compile(r"[+-]\d{2}:?\d{2}")


def zone(name: str) -> dt.tzinfo:
    """A channel's `timezone` option: an IANA name (`America/Sao_Paulo`), `UTC` or a fixed
    offset (`-03:00`); ValueError says what is wrong."""
    if not isinstance(name, str) or not name.strip():
        msg = f"timezone must be an IANA time zone name such as 'America/Sao_Paulo', got {name!r}"
        raise ValueError(msg)
    text = name.strip()
    if text.upper() in {"UTC", "Z", "GMT"}:
        return dt.UTC
    if _FIXED_OFFSET.fullmatch(text):
        return _offset(text)
    try:
        return zoneinfo.ZoneInfo(text)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError) as exc:
        msg = f"timezone {text!r} is not a known IANA time zone (e.g. 'America/Sao_Paulo', 'UTC', '-03:00')"
        raise ValueError(msg) from exc


def normalize_word(word: str) -> str:
    """The form status words are matched in: case-folded, accents removed (`Expiração` is
    `expiracao`), `_`, `-`, `.` and runs of spaces as one space (`Number_Not_Found`,
    `connection.update`)."""
    decomposed = unicodedata.normalize("NFKD", word)
    bare = "".join(c for c in decomposed if not unicodedata.combining(c))
    return " ".join(bare.replace("_", " ").replace("-", " ").replace(".", " ").split()).casefold()


def event_time(value: object, received_at: int, where: str, tz: dt.tzinfo | None = None) -> tuple[int, bool]:
    """(epoch ms, flagged): a missing time falls back to received_at and is flagged; a time
    without a zone is read in `tz` (refused without one)."""
    if value is None or value == "":
        return received_at, True
    return to_epoch_ms(value, where, tz), False
