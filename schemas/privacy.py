"""Recipient privacy: what of a phone number leaves the raw topic (STATUSFLOW_RECIPIENT_PRIVACY).

    plain  the number as the provider sent it (whitespace and a `whatsapp:` prefix removed)
    mask   country prefix and last two digits: `+5511987654321` → `+55*********21` (the default)
    hash   `h:` + 16 hex digits of HMAC-SHA256(STATUSFLOW_RECIPIENT_HASH_KEY, the number's digits):
           the same number always gives the same token, whichever provider reported it, so
           messages to one recipient can still be joined, but the number cannot be read back
           (a keyed hash: without the key, hashing every possible number does not reverse it)

Pure functions; the receiver (logs, audit excerpts) and the worker (events, changes, table,
query API, audit details, dead-letter reasons) each build one `Privacy` from their settings.
Raw payloads keep the number as sent: they stay on wa.webhooks.raw (and the DLQ, for replay).
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import re
from typing import Literal

PrivacyMode = Literal["plain", "mask", "hash"]
MODES: tuple[PrivacyMode, ...] = ("plain", "mask", "hash")

# E.164-like runs of digits (a recipient's number, with or without "+"), not inside a longer token.
_NUMBER = re.compile(r"(?<![0-9A-Za-z_.-])(\+?)(\d{6,11})(\d{4})(?![0-9A-Za-z_])")
_NON_DIGITS = re.compile(r"\D")


def _normalized(number: str) -> str:
    return number.strip().rpartition(":")[2].strip()


def mask_number(number: str | None) -> str | None:
    """Keep the country prefix and the last two digits of a phone number, hide the rest."""
    if not number:
        return number
    digits = _normalized(number)
    if len(digits) <= 5:
        return "*" * len(digits)
    return digits[:3] + "*" * (len(digits) - 5) + digits[-2:]


def hash_number(number: str, key: bytes) -> str:
    """`h:` + a keyed digest of the number's digits (`+55 11 9…` and `5511 9…` give the same token)."""
    digits = _NON_DIGITS.sub("", number) or number.strip()
    return "h:" + hmac.new(key, digits.encode("utf-8"), hashlib.sha256).hexdigest()[:16]


def mask_numbers(text: str) -> str:
    """Every phone-like run of digits in free text masked: `+5511987654321` → `+*********4321`."""
    return _NUMBER.sub(lambda m: m.group(1) + "*" * len(m.group(2)) + m.group(3), text)


@dataclasses.dataclass(frozen=True, slots=True)
class Privacy:
    """One process's policy for numbers in what it publishes and logs."""

    mode: PrivacyMode = "mask"
    key: bytes | None = dataclasses.field(default=None, repr=False)

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            msg = f"recipient privacy must be one of {', '.join(MODES)}, not {self.mode!r}"
            raise ValueError(msg)
        if self.mode == "hash" and not self.key:
            msg = "recipient privacy 'hash' needs a key (STATUSFLOW_RECIPIENT_HASH_KEY)"
            raise ValueError(msg)

    def recipient(self, number: str | None) -> str | None:
        """The recipient field of a derived record."""
        if not number or not number.strip():
            return None
        if self.mode == "plain":
            return _normalized(number)
        if self.mode == "hash":
            assert self.key is not None  # __post_init__
            return hash_number(_normalized(number), self.key)
        return mask_number(number)

    def text(self, text: str | None) -> str | None:
        """Free text of a derived record (error titles, reasons): phone-like numbers masked or hashed."""
        if not text or self.mode == "plain":
            return text
        if self.mode == "hash":
            key = self.key
            assert key is not None
            return _NUMBER.sub(lambda m: hash_number(m.group(0), key), text)
        return mask_numbers(text)

    def log_text(self, text: str) -> str:
        """A log line: like `text`, except that plain still masks (logs never carry a full number)."""
        return mask_numbers(text) if self.mode == "plain" else (self.text(text) or text)
