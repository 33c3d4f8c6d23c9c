"""Recipient privacy (schemas/privacy.py): plain, mask and hash, and where normalize applies it."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from receiver.settings import ReceiverSettings
from schemas.privacy import Privacy, hash_number, mask_number, mask_numbers
from streams.clock import now_ms
from streams.core.batches import RawRecord, plan_normalize
from streams.core.normalizer import normalize
from streams.core.outputs import Source
from streams.settings import WorkerSettings
from tests.factories import FIXTURES, raw_webhook

KEY = b"k" * 32
HASH = Privacy("hash", KEY)
NUMBERS = st.from_regex(r"\+?[1-9][0-9]{7,14}", fullmatch=True)


@pytest.mark.parametrize(
    ("number", "masked"),
    [
        ("+5511987654321", "+55*********21"),
        ("5511987654321", "551********21"),
        ("whatsapp:+447700900123", "+44********23"),
        (" 16505551234 ", "165******34"),
        ("12345", "*****"),
        ("", ""),
        (None, None),
    ],
)
def test_mask_keeps_the_country_prefix_and_the_last_two_digits(number: str | None, masked: str | None) -> None:
    assert mask_number(number) == masked


@given(NUMBERS)
def test_mask_never_shows_more_than_five_digits(number: str) -> None:
    masked = Privacy("mask").recipient(number)
    assert masked is not None
    assert sum(c.isdigit() for c in masked) <= 5
    assert len(masked) == len(number)


@given(NUMBERS)
def test_hash_is_stable_keyed_and_hides_every_digit_run(number: str) -> None:
    token = HASH.recipient(number)
    assert token == HASH.recipient(f"whatsapp:{number}") == HASH.recipient(f" {number} ")
    assert token == HASH.recipient(number.lstrip("+"))  # one recipient, one token, whatever the provider's format
    assert token is not None and token.startswith("h:") and len(token) == 18
    assert number.lstrip("+")[-6:] not in token
    assert token != Privacy("hash", b"another key").recipient(number)


def test_plain_keeps_the_number_without_the_channel_prefix() -> None:
    assert Privacy("plain").recipient("whatsapp:+5511987654321") == "+5511987654321"
    assert Privacy("plain").recipient("   ") is None


def test_free_text_numbers_follow_the_mode() -> None:
    text = "recipient 5511987654321 is not on WhatsApp (code 131026)"
    assert Privacy("plain").text(text) == text
    assert Privacy("mask").text(text) == "recipient *********4321 is not on WhatsApp (code 131026)"
    assert HASH.text(text) == f"recipient {hash_number('5511987654321', KEY)} is not on WhatsApp (code 131026)"
    # Logs never carry a full number, even in plain mode.
    assert Privacy("plain").log_text(text) == mask_numbers(text)
    assert "5511987654321" not in (HASH.log_text(text))


def test_hash_needs_a_key_and_an_unknown_mode_is_refused() -> None:
    with pytest.raises(ValueError, match="STATUSFLOW_RECIPIENT_HASH_KEY"):
        Privacy("hash")
    with pytest.raises(ValueError, match="plain, mask, hash"):
        Privacy("scramble")  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="STATUSFLOW_RECIPIENT_HASH_KEY"):
        WorkerSettings(recipient_privacy="hash")
    with pytest.raises(ValidationError, match="STATUSFLOW_RECIPIENT_HASH_KEY"):
        ReceiverSettings(recipient_privacy="hash")


def test_settings_read_the_mode_and_key_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STATUSFLOW_RECIPIENT_PRIVACY", "hash")
    monkeypatch.setenv("STATUSFLOW_RECIPIENT_HASH_KEY", "secret-key")
    privacy = WorkerSettings().privacy()
    assert privacy == Privacy("hash", b"secret-key")
    assert "secret-key" not in repr(privacy) + repr(WorkerSettings())
    assert ReceiverSettings().privacy() == privacy


@pytest.mark.parametrize(
    ("provider", "fixture", "content_type", "number"),
    [
        ("meta", "status_sent.json", "application/json", "16505551234"),
        ("twilio", "status_delivered.form", "application/x-www-form-urlencoded", "+5511987654321"),
        ("infobip", "report_delivered.json", "application/json", "5511987654321"),
        ("gupshup", "v2_sent.json", "application/json", "919876543210"),
        ("wpp", "delivery.json", "application/json", "5511987654321"),
    ],
)
def test_normalize_applies_the_mode_to_every_recipient(
    provider: str, fixture: str, content_type: str, number: str
) -> None:
    value = raw_webhook(provider, (FIXTURES / provider / fixture).read_bytes(), content_type).to_avro()
    by_mode = {
        mode: normalize(value, privacy=privacy).events[0].recipient
        for mode, privacy in {"plain": Privacy("plain"), "mask": Privacy("mask"), "hash": HASH}.items()
    }
    assert by_mode == {"plain": number, "mask": mask_number(number), "hash": hash_number(number, KEY)}
    assert normalize(value).events[0].recipient == mask_number(number)  # mask is the default


def test_hash_mode_leaves_no_number_in_any_planned_record() -> None:
    number = b"5511987654321"
    body = (
        b'{"entry":[{"changes":[{"value":{"statuses":['
        b'{"id":"w1","status":"failed","timestamp":"1750030000","recipient_id":"5511987654321",'
        b'"errors":[{"code":131026,"title":"5511987654321 is not on WhatsApp"}]},'
        b'{"id":"w2","status":"5511987654321","timestamp":"1750030000"}]}}]}]}'
    )
    failing = raw_webhook("meta", body)
    good = dataclasses.replace(
        failing, body=body.replace(b',{"id":"w2","status":"5511987654321"', b',{"id":"w2","status":"sent"')
    )
    records = [
        RawRecord(b"r1", failing.to_avro(), Source("raw", 0, 0)),
        RawRecord(b"r2", good.to_avro(), Source("raw", 0, 1)),
    ]
    plan = plan_normalize(records, 4, privacy=HASH, at=now_ms())
    # w1 of the failing webhook stands alone: tracked; its bad sibling w2 is the one dead letter.
    assert plan.events == 3 and len(plan.dead_letters) == 1
    derived = [v for _, _, v in plan.encoded_bundles()] + [v for _, v in plan.audits] + [v for _, v in plan.signals]
    assert derived and not any(number in value for value in derived)
    assert any(hash_number("5511987654321", KEY).encode() in value for value in derived)
    # The dead letter keeps the raw envelope for replay (documented), its reason does not quote the number.
    from schemas.codec import codec

    (letter,) = [codec("dead_letter").decode(v) for _, v in plan.dead_letters]
    assert "5511987654321" not in letter["reason"]
    assert number in letter["raw"]


def test_raw_and_dead_letter_retention_are_configurable(monkeypatch: pytest.MonkeyPatch) -> None:
    from schemas.settings import KafkaSettings
    from schemas.topics import topic_specs

    def retention(settings: KafkaSettings) -> dict[str, str]:
        return {spec.name: spec.topic_configs["retention.ms"] for spec in topic_specs(settings)}

    four_weeks = str(28 * 86_400_000)
    defaults = retention(KafkaSettings())
    assert (defaults["wa.webhooks.raw"], defaults["wa.webhooks.dlq"]) == (four_weeks, four_weeks)
    monkeypatch.setenv("STATUSFLOW_RAW_RETENTION_MS", str(86_400_000))
    monkeypatch.setenv("STATUSFLOW_DLQ_RETENTION_MS", "-1")
    configured = retention(KafkaSettings())
    assert (configured["wa.webhooks.raw"], configured["wa.webhooks.dlq"]) == ("86400000", "-1")
    assert {k: v for k, v in configured.items() if "webhooks" not in k} == {
        k: v for k, v in defaults.items() if "webhooks" not in k
    }


def test_the_normalize_child_process_gets_the_hash_key() -> None:
    # The worker hands its settings to the normalize process as JSON, which writes secrets as
    # `**********`: every recipient would have been hashed with that instead of the key.
    from streams.normalize_process import settings_for_child, settings_in_child

    settings = WorkerSettings(recipient_privacy="hash", recipient_hash_key="the-real-key")
    as_json, secrets = settings_for_child(settings)
    assert "the-real-key" not in as_json
    assert settings_in_child(as_json, secrets).privacy() == settings.privacy() == Privacy("hash", b"the-real-key")
