"""Issue 16, the codes: Meta's, Twilio's, Infobip's, Vonage's and Gupshup's published error codes
mapped to failure reasons, kept as data (streams/adapters/error_codes/*.toml) with their source."""

from __future__ import annotations

import datetime as dt
import tomllib
from importlib import resources

import pytest

from streams.adapters import error_codes
from streams.adapters.error_codes import PROVIDERS, refine, table
from streams.adapters.registry import adapter_for
from streams.domain.alerting import KIND_BY_REASON
from streams.domain.status import FailureReason
from tests.factories import FIXTURES, raw_webhook

R = FailureReason


@pytest.mark.parametrize("provider", PROVIDERS)
def test_every_table_names_its_source_and_review_date(provider: str) -> None:
    t = table(provider)
    assert t.source.startswith("https://")
    assert dt.date.fromisoformat(t.reviewed) <= dt.datetime.now(dt.UTC).date()
    assert len(t.codes) >= 10
    text = resources.files(error_codes).joinpath(f"{provider}.toml").read_text(encoding="utf-8")
    assert t.source in text.split("[codes]")[0]  # the header comment and the key say the same page
    assert all(entry.title for entry in t.codes.values())


@pytest.mark.parametrize("provider", PROVIDERS)
def test_every_reason_in_the_tables_is_canonical_and_raises_an_alert_kind(provider: str) -> None:
    raw = tomllib.loads(resources.files(error_codes).joinpath(f"{provider}.toml").read_text(encoding="utf-8"))
    for code, entry in raw["codes"].items():
        reason = FailureReason(entry["reason"])
        assert reason in KIND_BY_REASON, (provider, code)
        assert set(entry) == {"reason", "title"}, (provider, code)


@pytest.mark.parametrize(
    ("provider", "code", "reason"),
    [
        # Meta Cloud API (and On-Premise codes Weni forwards)
        ("meta", "131026", R.NOT_FOUND),
        ("meta", "131047", R.EXPIRED),
        ("meta", "131049", R.RATE_LIMITED),  # per-user marketing limit: not expired (issue 16)
        ("meta", "131050", R.REJECTED),
        ("meta", "131056", R.RATE_LIMITED),
        ("meta", "130429", R.RATE_LIMITED),
        ("meta", "368", R.REJECTED),
        ("meta", "132001", R.ERROR),
        ("meta", "470", R.EXPIRED),
        ("meta", "1013", R.NOT_FOUND),
        # Twilio
        ("twilio", "63016", R.EXPIRED),
        ("twilio", "63024", R.NOT_FOUND),
        ("twilio", "63003", R.NOT_FOUND),
        ("twilio", "21610", R.REJECTED),
        ("twilio", "63018", R.RATE_LIMITED),
        ("twilio", "63049", R.RATE_LIMITED),
        ("twilio", "30007", R.REJECTED),
        ("twilio", "30005", R.NOT_FOUND),
        ("twilio", "30008", R.ERROR),
        # Infobip, by name (case-insensitive)
        ("infobip", "EC_UNKNOWN_SUBSCRIBER", R.NOT_FOUND),
        ("infobip", "ec_unknown_subscriber", R.NOT_FOUND),
        ("infobip", "EC_CALL_BARRED", R.REJECTED),
        ("infobip", "EC_ABSENT_SUBSCRIBER", R.ERROR),
        # Vonage Messages API
        ("vonage", "1300", R.NOT_FOUND),
        ("vonage", "1340", R.EXPIRED),
        ("vonage", "1360", R.EXPIRED),
        ("vonage", "1240", R.REJECTED),
        ("vonage", "1000", R.RATE_LIMITED),
        ("vonage", "1461", R.RATE_LIMITED),
        ("vonage", "1330", R.ERROR),
        # Gupshup
        ("gupshup", "1002", R.NOT_FOUND),
        ("gupshup", "1008", R.REJECTED),
        ("gupshup", "1012", R.REJECTED),
        ("gupshup", "1004", R.EXPIRED),
        ("gupshup", "4001", R.RATE_LIMITED),
    ],
)
def test_representative_codes(provider: str, code: str, reason: FailureReason) -> None:
    assert table(provider).reason(code) is reason
    assert table(provider).reason(f" {code} ") is reason


def test_unlisted_codes_say_nothing() -> None:
    assert table("meta").reason("999999") is None
    assert table("twilio").reason("not-a-code") is None
    assert table("meta").reason(None) is None


def test_a_code_that_says_more_than_error_wins_over_the_word() -> None:
    assert refine(R.REJECTED, R.EXPIRED) is R.EXPIRED
    assert refine(R.REJECTED, R.ERROR) is R.REJECTED
    assert refine(R.REJECTED, None) is R.REJECTED
    assert refine(None, None) is R.ERROR


@pytest.mark.parametrize(
    ("provider", "fixture", "reason", "code"),
    [
        ("meta", "meta/status_failed_marketing_limit.json", R.RATE_LIMITED, "131049"),
        ("meta", "meta/status_failed_window_closed.json", R.EXPIRED, "131047"),
        ("meta", "meta/status_failed_not_on_whatsapp.json", R.NOT_FOUND, "131026"),
        ("twilio", "twilio/status_undelivered_marketing_limit.form", R.RATE_LIMITED, "63049"),
        ("twilio", "twilio/status_undelivered_outside_window.form", R.EXPIRED, "63016"),
        ("infobip", "infobip/report_undeliverable_call_barred.json", R.REJECTED, "13"),
        ("infobip", "infobip/report_undeliverable_unknown_subscriber.json", R.NOT_FOUND, "1"),
        ("vonage", "vonage/status_rejected_code_reason.json", R.NOT_FOUND, "1300"),
        ("vonage", "vonage/status_rejected_marketing_limit.json", R.RATE_LIMITED, "1461"),
        ("vonage", "vonage/status_undeliverable_not_on_whatsapp.json", R.NOT_FOUND, "131026"),
        ("gupshup", "gupshup/v2_failed_opted_out.json", R.REJECTED, "1012"),
        ("gupshup", "gupshup/v2_failed_marketing_limit.json", R.RATE_LIMITED, "131049"),
        ("gupshup", "gupshup/v2_failed_not_on_whatsapp.json", R.NOT_FOUND, "1002"),
        ("aivo", "aivo/status_error_marketing_limit.json", R.RATE_LIMITED, "131049"),
        ("weni", "weni/onpremise_failed_window_closed.json", R.EXPIRED, "470"),
    ],
)
def test_adapters_read_the_tables(provider: str, fixture: str, reason: FailureReason, code: str) -> None:
    adapter = adapter_for(provider)
    assert adapter is not None
    content_type = "application/x-www-form-urlencoded" if fixture.endswith(".form") else "application/json"
    (event,) = adapter.parse(raw_webhook(provider, (FIXTURES / fixture).read_bytes(), content_type)).events
    assert (event.failure_reason, event.error_code) == (reason, code)


def test_vonage_reads_the_documented_code_and_reason_shape() -> None:
    adapter = adapter_for("vonage")
    assert adapter is not None
    body = (FIXTURES / "vonage" / "status_rejected_code_reason.json").read_bytes()
    (event,) = adapter.parse(raw_webhook("vonage", body)).events
    assert (event.error_code, event.error_title) == ("1300", "Not part of the provider network")


def test_rate_limited_failures_alert_as_message_failed() -> None:
    assert KIND_BY_REASON[R.RATE_LIMITED] == "message_failed"
