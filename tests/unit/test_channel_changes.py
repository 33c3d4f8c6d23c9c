"""What a reload of the channels file would change, as the logs and check-config say it."""

from __future__ import annotations

from typing import Any

from schemas.channel_changes import ChangeDetector, ConfigDiff, FileStamp, diff_configs
from schemas.channels import ChannelsConfig, parse_channels

SHOP = {"name": "shop", "provider": "meta", "auth": {"kind": "meta_hmac", "secret": "old-secret-1"}}
PANEL = {"name": "panel", "provider": "wpp", "statuses": ["failed", "read"], "options": {"timezone": "-03:00"}}


def config(*channels: dict[str, Any]) -> ChannelsConfig:
    return parse_channels({"channels": list(channels)}, {}, source="channels.toml")


def test_the_same_file_changes_nothing() -> None:
    diff = diff_configs(config(SHOP, PANEL), config(PANEL, SHOP))
    assert diff.empty
    assert diff.summary() == "no change"
    assert diff.lines() == []


def test_channels_added_and_removed_are_named() -> None:
    diff = diff_configs(config(SHOP, PANEL), config(SHOP, {"name": "acme-wa", "provider": "generic"}))
    assert diff.added == (("channel", "acme-wa"),)
    assert diff.removed == (("channel", "panel"),)
    assert diff.changed == ()
    assert diff.lines() == ["+ channel acme-wa", "- channel panel"]


def test_a_rotated_secret_is_said_rotated_and_never_shown() -> None:
    rotated = {**SHOP, "auth": {"kind": "meta_hmac", "secret": "new-secret-2", "verify_token": "hello-token"}}
    diff = diff_configs(config(SHOP), config(rotated))
    [change] = diff.changed
    assert (change.kind, change.name) == ("channel", "shop")
    assert [f.describe() for f in change.fields] == ["auth.secret rotated", "auth.verify_token set"]
    text = "\n".join([*diff.lines(), diff.summary()])
    for secret in ("old-secret-1", "new-secret-2", "hello-token"):
        assert secret not in text
    assert diff.summary() == "changed channel shop (auth.secret rotated, auth.verify_token set)"


def test_a_removed_secret_is_said_removed() -> None:
    token = {"name": "bot", "provider": "aivo", "auth": {"kind": "header_token", "secret": "t0ken-value"}}
    diff = diff_configs(config(token), config({"name": "bot", "provider": "aivo"}))
    [change] = diff.changed
    assert [f.describe() for f in change.fields] == ["auth.kind: header_token -> none", "auth.secret removed"]


def test_statuses_and_adapter_options_changes_show_old_and_new_values() -> None:
    changed = {
        **PANEL,
        "statuses": ["delivered", "failed", "read"],
        "options": {"timezone": "America/Sao_Paulo", "statuses": {"orbiting": "failed:rejected"}},
    }
    [change] = diff_configs(config(PANEL), config(changed)).changed
    assert [f.describe() for f in change.fields] == [
        "options.statuses.orbiting: unset -> failed:rejected",
        "options.timezone: -03:00 -> America/Sao_Paulo",
        "statuses: failed, read -> delivered, failed, read",
    ]


def test_a_filter_dropped_means_every_status() -> None:
    [change] = diff_configs(config(PANEL), config({**PANEL, "statuses": None})).changed
    assert [f.describe() for f in change.fields] == ["statuses: failed, read -> unset"]


def test_long_values_are_cut_in_the_summary() -> None:
    long = {**PANEL, "public_url": "https://example.com/" + "x" * 200}
    [change] = diff_configs(config(PANEL), config(long)).changed
    [field] = change.fields
    assert field.after is not None
    assert len(field.after) <= 60
    assert field.after.endswith("…")


def test_an_empty_diff_object_is_empty() -> None:
    assert ConfigDiff().empty


STAMP = FileStamp(inode=1, size=10, mtime_ns=100, ctime_ns=100)
WRITING = FileStamp(inode=1, size=4, mtime_ns=200, ctime_ns=200)
WRITTEN = FileStamp(inode=1, size=12, mtime_ns=300, ctime_ns=300)


def test_an_unchanged_file_is_never_read_again() -> None:
    detector = ChangeDetector(STAMP)
    assert [detector.observe(STAMP) for _ in range(3)] == [False, False, False]


def test_a_change_is_read_once_the_file_holds_still() -> None:
    detector = ChangeDetector(STAMP)
    # Written in two steps across polls: read once, after the second step, when it settled.
    assert [detector.observe(s) for s in (WRITING, WRITTEN, WRITTEN, WRITTEN)] == [False, False, True, False]


def test_a_missing_file_is_read_once_to_be_reported_and_again_when_it_is_back() -> None:
    detector = ChangeDetector(STAMP)
    assert [detector.observe(s) for s in (None, None, None)] == [False, True, False]
    assert [detector.observe(s) for s in (WRITTEN, WRITTEN)] == [False, True]
