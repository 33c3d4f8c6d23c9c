"""Providers' published error codes and the failure reason each stands for, kept as data.

One TOML file per provider (`meta.toml`, `twilio.toml`, `infobip.toml`, `vonage.toml`,
`gupshup.toml`) names the page it was taken from (`source`) and when it was reviewed
(`reviewed`), and maps each code (Infobip: each error `name`) to a failure reason and the
provider's own title. A code a table does not list, or lists as `error`, says nothing more than
"failed": the adapter keeps the reason its status word gives (Vonage `rejected`, an Infobip
group), else `error`. Reasons (streams/domain/status.py): `not_found` (the number cannot
receive WhatsApp / does not exist), `expired` (validity or the 24-hour window ran out),
`rejected` (refused: opt-out, block, policy), `rate_limited` (a sending limit, including Meta's
per-user marketing limit 131049), `error`.

To change a mapping, edit the table (and its test in tests/unit/test_error_codes.py); an
operator of a `generic`/`wpp` channel maps its own codes with the `error_reasons` option.
"""

from __future__ import annotations

import dataclasses
import functools
import tomllib
import types
from collections.abc import Mapping
from importlib import resources

from streams.domain.status import FailureReason

PROVIDERS = ("meta", "twilio", "infobip", "vonage", "gupshup")


@dataclasses.dataclass(frozen=True, slots=True)
class ErrorCode:
    """One published code: what it means for statusflow and what the provider calls it."""

    reason: FailureReason
    title: str


@dataclasses.dataclass(frozen=True, slots=True)
class ErrorTable:
    """A provider's published codes, with the page they come from."""

    provider: str
    source: str
    reviewed: str
    codes: Mapping[str, ErrorCode]
    upper_case: bool = False  # Infobip's names are matched upper-cased

    def lookup(self, code: str | None) -> ErrorCode | None:
        """The entry of `code` (surrounding space ignored), None when unlisted or absent."""
        if code is None:
            return None
        key = code.strip()
        return self.codes.get(key.upper() if self.upper_case else key)

    def reason(self, code: str | None) -> FailureReason | None:
        """The reason `code` stands for, None when the table does not list it."""
        entry = self.lookup(code)
        return entry.reason if entry is not None else None


@functools.cache
def table(provider: str) -> ErrorTable:
    """The table of `provider` (one of PROVIDERS), read once from its TOML file."""
    if provider not in PROVIDERS:
        msg = f"no error-code table for provider {provider!r}"
        raise KeyError(msg)
    text = resources.files(__package__).joinpath(f"{provider}.toml").read_text(encoding="utf-8")
    data = tomllib.loads(text)
    codes: dict[str, ErrorCode] = {}
    upper = bool(data.get("match_upper_case", False))
    for code, entry in data["codes"].items():
        key = str(code).strip().upper() if upper else str(code).strip()
        codes[key] = ErrorCode(reason=FailureReason(entry["reason"]), title=str(entry["title"]))
    return ErrorTable(
        provider=provider,
        source=str(data["source"]),
        reviewed=str(data["reviewed"]),
        codes=types.MappingProxyType(codes),
        upper_case=upper,
    )


def reason(provider: str, code: str | None) -> FailureReason | None:
    """The reason `provider`'s table gives `code`, None when it does not list it."""
    return table(provider).reason(code)


def refine(word_reason: FailureReason | None, code_reason: FailureReason | None) -> FailureReason:
    """The reason of a failed status: a code that says more than `error` wins over what the
    status word says (Vonage `rejected` with 1340 is the closed 24-hour window: expired)."""
    if code_reason is not None and code_reason is not FailureReason.ERROR:
        return code_reason
    return word_reason or FailureReason.ERROR
