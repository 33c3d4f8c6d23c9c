"""Issue 16, the times: local times without a zone (`2025-06-15 20:20:20`, `15/06/2025 20:20:20`)
are read in the channel's `timezone` option (default UTC) for the providers that send them."""

from __future__ import annotations

import datetime as dt

import pytest

from schemas.channels import parse_channels
from schemas.errors import ConfigurationError
from streams.adapters._fields import event_time, to_epoch_ms, zone
from streams.adapters.aivo import AivoAdapter
from streams.adapters.base import UnparseableWebhook
from streams.adapters.generic import GenericAdapter
from streams.adapters.registry import ADAPTERS, channel_resolver
from streams.adapters.wpp import load_wpp_config
from streams.core.normalizer import normalize
from tests.factories import FIXTURES, raw_webhook

SAO_PAULO = zone("America/Sao_Paulo")
# 2025-06-15 20:20:20 in São Paulo (UTC-3, no daylight saving time since 2019) and in UTC.
LOCAL_SP = 1_750_029_620_000
LOCAL_UTC = 1_750_018_820_000


@pytest.mark.parametrize(
    "text",
    [
        "2025-06-15 20:20:20",
        "2025-06-15T20:20:20",
        "2025-06-15 20:20:20.000",
        "15/06/2025 20:20:20",
        "15-06-2025 20:20:20",
        "15.06.2025 20:20:20",
        "15/06/2025, 20:20:20",
        "2025/06/15 20:20:20",
        "15/6/2025 20:20:20",
    ],
)
def test_local_formats_are_read_in_the_channel_zone(text: str) -> None:
    assert to_epoch_ms(text, "t", SAO_PAULO) == LOCAL_SP
    assert to_epoch_ms(text, "t", dt.UTC) == LOCAL_UTC


@pytest.mark.parametrize(
    ("text", "ms"),
    [
        ("15/06/2025 20:20", LOCAL_SP - 20_000),
        ("15/06/2025 20:20:20.5", LOCAL_SP + 500),
        ("15/06/2025", LOCAL_SP - (20 * 3600 + 20 * 60 + 20) * 1000),
    ],
)
def test_day_first_without_seconds_with_a_fraction_or_date_only(text: str, ms: int) -> None:
    assert to_epoch_ms(text, "t", SAO_PAULO) == ms


@pytest.mark.parametrize(
    "text",
    [
        "15/06/2025 23:20:20Z",
        "15/06/2025 20:20:20 -03:00",
        "15/06/2025 20:20:20-0300",
        "2025-06-15 20:20:20 -03:00",
        "2025-06-15 23:20:20 UTC",
        "2025-06-15T20:20:20-03:00",
    ],
)
def test_an_explicit_zone_wins_over_the_channel_zone(text: str) -> None:
    berlin = zone("Europe/Berlin")
    assert to_epoch_ms(text, "t", berlin) == LOCAL_SP
    assert to_epoch_ms(text, "t") == LOCAL_SP


@pytest.mark.parametrize("text", ["06/15/2025 20:20:20", "31/02/2025 10:00:00", "15/06/2025 25:00:00", "15/06/25"])
def test_impossible_dates_are_refused_not_guessed(text: str) -> None:
    with pytest.raises(UnparseableWebhook, match=r"^t is not a recognised time"):
        to_epoch_ms(text, "t", SAO_PAULO)


def test_without_a_zone_and_without_a_channel_zone_a_time_is_refused() -> None:
    # Providers that document zoned times (Meta, Infobip, Vonage…) pass no zone: still refused.
    with pytest.raises(UnparseableWebhook, match="has no time zone"):
        to_epoch_ms("2025-06-15 20:20:20", "t")
    with pytest.raises(UnparseableWebhook, match="has no time zone"):
        to_epoch_ms("15/06/2025 20:20:20", "t")


def test_event_time_takes_the_zone_too() -> None:
    assert event_time("15/06/2025 20:20:20", 42, "t", SAO_PAULO) == (LOCAL_SP, False)
    assert event_time("", 42, "t", SAO_PAULO) == (42, True)


@pytest.mark.parametrize(
    ("name", "offset_h"), [("UTC", 0), ("utc", 0), ("-03:00", -3), ("+0530", 5.5), ("America/Sao_Paulo", -3)]
)
def test_zone_names(name: str, offset_h: float) -> None:
    winter = dt.datetime(2025, 6, 15, tzinfo=zone(name))
    assert winter.utcoffset() == dt.timedelta(hours=offset_h)


@pytest.mark.parametrize("name", ["Mars/Olympus", "", "  ", "../etc/passwd", "-3"])
def test_unknown_zones_are_refused(name: str) -> None:
    with pytest.raises(ValueError, match="timezone"):
        zone(name)


def test_daylight_saving_zones_use_the_offset_of_the_date() -> None:
    new_york = zone("America/New_York")
    assert to_epoch_ms("15/01/2025 12:00:00", "t", new_york) == to_epoch_ms("2025-01-15T12:00:00-05:00", "t")
    assert to_epoch_ms("15/07/2025 12:00:00", "t", new_york) == to_epoch_ms("2025-07-15T12:00:00-04:00", "t")


# --- the channel option ------------------------------------------------------------------


def test_wpp_channel_timezone_option() -> None:
    adapter = GenericAdapter("wpp", load_wpp_config({"timezone": "America/Sao_Paulo"}))
    body = (FIXTURES / "wpp" / "local_time_day_first.json").read_bytes()
    (event,) = adapter.parse(raw_webhook("wpp", body)).events
    assert (event.occurred_at, event.time_from_receipt) == (LOCAL_SP, False)
    (envelope,) = adapter.parse(
        raw_webhook("wpp", (FIXTURES / "wpp" / "envelope_event_status.json").read_bytes())
    ).events
    assert envelope.occurred_at == LOCAL_SP


@pytest.mark.parametrize("name", ["local_time_iso_space.json", "local_time_day_first.json"])
def test_aivo_local_times_default_to_utc_and_follow_the_option(name: str) -> None:
    body = (FIXTURES / "aivo" / name).read_bytes()
    (utc,) = AivoAdapter().parse(raw_webhook("aivo", body)).events
    (local,) = AivoAdapter(timezone="America/Sao_Paulo").parse(raw_webhook("aivo", body)).events
    assert (utc.occurred_at, local.occurred_at) == (LOCAL_UTC, LOCAL_SP)


def test_channels_get_their_zone_from_the_channels_file() -> None:
    channels = parse_channels(
        {
            "channels": [
                {"name": "loja", "provider": "wpp", "options": {"timezone": "America/Sao_Paulo"}},
                {"name": "norte", "provider": "aivo", "options": {"timezone": "America/Sao_Paulo"}},
                {"name": "plain", "provider": "aivo"},
            ]
        },
        {},
    )
    resolve = channel_resolver((c.name, c.provider, c.options) for c in channels.channels)
    assert resolve("aivo", "plain") is ADAPTERS["aivo"]
    for provider, channel, fixture in (("wpp", "loja", "wpp/local_time_day_first.json"),
                                       ("aivo", "norte", "aivo/local_time_day_first.json")):  # fmt: skip
        raw = raw_webhook(provider, (FIXTURES / fixture).read_bytes(), channel=channel)
        (event,) = normalize(raw.to_avro(), resolve).events
        assert event.occurred_at == LOCAL_SP, provider


def test_a_bad_zone_is_refused_when_the_channels_file_is_read() -> None:
    with pytest.raises(ConfigurationError, match=r"channel 'loja'.*timezone 'Mars/Olympus' is not a known IANA"):
        parse_channels({"channels": [{"name": "loja", "provider": "wpp", "options": {"timezone": "Mars/Olympus"}}]}, {})


@pytest.mark.parametrize(
    ("provider", "options", "match"),
    [
        ("aivo", {"timezone": "Nowhere/Land"}, r"channel 'c': options: aivo options: timezone 'Nowhere/Land'"),
        ("aivo", {"statuses": {}}, r"aivo options: unknown key\(s\) \['statuses'\]"),
        ("generic", {"timezone": 5}, r"channel 'c': options: generic config: timezone must be an IANA"),
    ],
)
def test_a_bad_option_fails_start_up_naming_the_channel(provider: str, options: dict[str, object], match: str) -> None:
    with pytest.raises(ConfigurationError, match=match):
        channel_resolver([("c", provider, options)])
