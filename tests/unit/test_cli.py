"""The statusflow command line: configuration check, record rendering, filters, --help."""

from __future__ import annotations

import argparse
import itertools
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from schemas.codec import codec
from schemas.envelope import RawWebhook
from statusflow_cli.console import EXIT_USAGE, CliError, progress
from statusflow_cli.loadgen import (
    MAX_COUNT,
    MAX_DURATION_S,
    MAX_RATE,
    generate,
    is_loopback_url,
    parse_mix,
    percentiles,
    webhook_count,
)
from statusflow_cli.main import build_parser, main, matches, render
from statusflow_cli.samples import LIFECYCLES
from streams.core.normalizer import normalize
from streams.replay import replay_settings
from streams.settings import WorkerSettings
from tests.unit.test_schemas import RECORDS


def test_check_config_explains_each_channel(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "channels.toml"
    config.write_text(
        '[[channels]]\nname = "shop"\nprovider = "meta"\nstatuses = ["failed", "read"]\n'
        '[channels.auth]\nkind = "meta_hmac"\nsecret = "s"\n',
        encoding="utf-8",
    )
    assert main(["check-config", str(config)]) == 0
    out = capsys.readouterr().out
    assert "POST /webhooks/meta/shop (failed, read)" in out
    assert "app secret" in out


def test_check_config_refuses_a_bad_file_with_the_reason(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "channels.toml"
    config.write_text('[[channels]]\nname = "shop"\nprovider = "nope"\n', encoding="utf-8")
    assert main(["check-config", str(config)]) == 2
    assert "shop" in capsys.readouterr().err


def test_render_decodes_any_topic_and_filters_apply() -> None:
    record = render(codec("alert").encode(RECORDS["alert"]), b"k")
    assert record is not None
    assert (record["schema"], record["kind"], record["key"]) == ("alert", "failure_rate_spike", "k")
    args = argparse.Namespace(channel="shop-br", message=None, kind="failure_rate_spike")
    assert matches(record, args)
    assert not matches(record, argparse.Namespace(channel="other", message=None, kind=None))
    assert render(b"not avro", None) is None


COMMANDS = [
    "run",
    "demo",
    "tail",
    "replay",
    "loadgen",
    "topics",
    "check-config",
    "export-parquet",
    "dashboard",
    "funnel",
    "notify",
    "redrive",
]


def test_every_command_is_listed_here() -> None:
    """A new subcommand must join COMMANDS, so that its --help is tested too."""
    parser = build_parser()
    [subparsers] = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    assert sorted(subparsers.choices) == sorted(COMMANDS)


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        build_parser().parse_args([command, "--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert f"usage: statusflow {command}" in out
    assert "options:" in out


def test_the_console_script_lists_every_command() -> None:
    script = Path(sys.executable).with_name("statusflow")
    done = subprocess.run([str(script), "--help"], capture_output=True, text=True, timeout=60, check=True)
    for command in COMMANDS:
        assert command in done.stdout


@pytest.mark.parametrize(
    ("mix", "expected"),
    [("meta=3,twilio", {"meta": 3, "twilio": 1}), ("all", dict.fromkeys(LIFECYCLES, 1))],
)
def test_loadgen_mix_parses_weights(mix: str, expected: dict[str, int]) -> None:
    assert parse_mix(mix) == expected


@pytest.mark.parametrize("mix", ["nope=1", "meta=0", "meta=x", ""])
def test_loadgen_mix_refuses_what_it_cannot_use(mix: str) -> None:
    with pytest.raises(CliError) as error:
        parse_mix(mix)
    assert error.value.exit_code == EXIT_USAGE


def test_loadgen_count_is_rate_times_duration_within_the_caps() -> None:
    assert webhook_count(50, 2, None) == 100
    assert webhook_count(50, 2, 30) == 30
    for rate, duration, count in [(MAX_RATE + 1, 1, None), (10, MAX_DURATION_S + 1, None), (10, 1, MAX_COUNT + 1)]:
        with pytest.raises(CliError):
            webhook_count(rate, duration, count)


def test_loadgen_targets_loopback_unless_told() -> None:
    assert is_loopback_url("http://127.0.0.1:8080") and is_loopback_url("http://localhost:1")
    assert is_loopback_url("http://[::1]:8080")
    assert not is_loopback_url("https://hooks.example.com/x")


def test_loadgen_workload_follows_the_mix_and_parses() -> None:
    webhooks = list(itertools.islice(generate({"meta": 1, "wpp": 3}, seed=1, prefix="x-"), 400))
    providers = Counter(provider for provider, _, _ in webhooks)
    assert set(providers) == {"meta", "wpp"}
    assert providers["wpp"] > providers["meta"]
    for provider, body, content_type in webhooks[:50]:
        envelope = RawWebhook(
            request_id="r",
            provider=provider,
            channel="main",
            received_at=1,
            content_type=content_type,
            url="u",
            body=body,
        )
        assert normalize(envelope.to_avro()).dead_letter_reason is None


def test_loadgen_event_times_are_of_now_as_live_traffics_are() -> None:
    # Samples dated in 2025 are past their retention on a live stack: each would be retired
    # as soon as it was tracked, and a load test would measure retirement, not tracking.
    now = 1_800_000_000.0
    webhooks = list(
        itertools.islice(generate(dict.fromkeys(LIFECYCLES, 1), seed=3, prefix="t-", clock=lambda: now), 300)
    )
    times = []
    for provider, body, content_type in webhooks:
        envelope = RawWebhook(
            request_id="r",
            provider=provider,
            channel="main",
            received_at=int(now * 1000),
            content_type=content_type,
            url="u",
            body=body,
        )
        times += [event.occurred_at for event in normalize(envelope.to_avro()).events]
    assert times
    assert all((now - 180) * 1000 <= at <= now * 1000 for at in times), (min(times), max(times))


def test_percentiles_by_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert percentiles(values) == {"p50": 50.0, "p90": 90.0, "p99": 99.0, "max": 100.0}
    assert percentiles([]) == {"p50": 0.0, "p90": 0.0, "p99": 0.0, "max": 0.0}


def test_progress_bars_draw_on_a_terminal_only(capsys: pytest.CaptureFixture[str]) -> None:
    with progress("loading", 3, enabled=False) as quiet:
        quiet.advance(3)
    assert capsys.readouterr() == ("", "")
    with progress("loading", 3, enabled=True) as bar:
        bar.advance(2)
        bar.update(3)
    err = capsys.readouterr().err
    assert "loading" in err and "3/3" in err


def test_progress_follows_whether_stderr_is_a_terminal(capsys: pytest.CaptureFixture[str]) -> None:
    # Under pytest stderr is captured, not a terminal: no bar unless asked for.
    with progress("piped", 1) as tracker:
        tracker.advance()
    assert capsys.readouterr().err == ""


def test_a_replay_shares_the_raw_log_and_the_notifiers_ledger() -> None:
    live = WorkerSettings()
    replayed = replay_settings(live, "statusflow-replay", ".replay")
    assert replayed.topics.raw == live.topics.raw
    assert replayed.topics.redrive == live.topics.redrive
    # The replayed alerts carry the live ones' ids: a notifier moved to them keeps its ledger.
    assert replayed.topics.alerts_delivered == live.topics.alerts_delivered
    assert replayed.topics.alerts_parked == live.topics.alerts_parked
    assert replayed.topics.alerts == live.topics.alerts + ".replay"
    assert replayed.topics.changes == live.topics.changes + ".replay"
