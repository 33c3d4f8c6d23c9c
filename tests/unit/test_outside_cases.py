"""Payloads published by others (shared/outside-cases) must become what expected.tsv says.

Only providers that have an adapter are checked here; the rest arrive with their adapters.
"""

from __future__ import annotations

import csv

import pytest

from streams.adapters.registry import ADAPTERS
from streams.normalizer import normalize
from tests.factories import OUTSIDE_CASES, raw_webhook

CONTENT_TYPES = {"json": "application/json", "form": "application/x-www-form-urlencoded"}


def _cases() -> list[tuple[str, str, str, str]]:
    if not (OUTSIDE_CASES / "expected.tsv").is_file():
        return []  # test_outside_cases_are_present fails with the path
    with (OUTSIDE_CASES / "expected.tsv").open(encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh, delimiter="\t"))
    return [(r["file"], r["provider"], r["id"], r["expect"]) for r in rows if r["provider"] in ADAPTERS]


def test_outside_cases_are_present() -> None:
    # The cases live in shared/ beside the checkout; a missing folder must fail, not skip.
    assert _cases(), f"no outside cases found under {OUTSIDE_CASES}"


@pytest.mark.parametrize(("file", "provider", "message_id", "expect"), _cases())
def test_outside_case(file: str, provider: str, message_id: str, expect: str) -> None:
    path = OUTSIDE_CASES / file
    raw = raw_webhook(provider, path.read_bytes(), CONTENT_TYPES[path.suffix.lstrip(".")])
    result = normalize(raw.to_avro())
    if expect == "dlq":
        assert result.dead_letter_reason
        assert result.events == ()
    elif expect == "ignored":
        assert result.dead_letter_reason is None
        assert result.outcome == "ignored"
        assert result.ignored >= 1
    else:
        assert result.dead_letter_reason is None
        statuses = {e.status.value for e in result.events if e.message_id == message_id}
        assert expect in statuses
