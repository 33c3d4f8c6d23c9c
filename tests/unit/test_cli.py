"""The statusflow command line: configuration check, record rendering, filters, --help."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from schemas.codec import codec
from statusflow_cli.main import build_parser, main, matches, render
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


@pytest.mark.parametrize("command", ["run", "topics", "tail", "check-config", "replay"])
def test_every_command_has_help(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        build_parser().parse_args([command, "--help"])
    assert exit_info.value.code == 0
    assert "usage: statusflow" in capsys.readouterr().out
