"""`statusflow check-config NEW --against CURRENT`: what a reload from CURRENT to NEW would change."""

from __future__ import annotations

from pathlib import Path

import pytest

from statusflow_cli.main import main


def test_check_config_against_the_file_in_force_says_what_a_reload_would_change(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    current, new = tmp_path / "current.toml", tmp_path / "new.yaml"
    current.write_text(
        '[[channels]]\nname = "shop"\nprovider = "meta"\n'
        '[channels.auth]\nkind = "meta_hmac"\nsecret = "old-app-secret"\n'
        '[[channels]]\nname = "panel"\nprovider = "wpp"\n',
        encoding="utf-8",
    )
    new.write_text(
        "channels:\n"
        "  - {name: shop, provider: meta, statuses: [failed], auth: {kind: meta_hmac, secret: new-app-secret}}\n"
        "  - {name: acme-wa, provider: generic}\n",
        encoding="utf-8",
    )
    assert main(["check-config", str(new), "--against", str(current)]) == 0
    out = capsys.readouterr().out
    assert out.endswith(
        f"reload from {current}:\n"
        "  + channel acme-wa\n"
        "  - channel panel\n"
        "  ~ channel shop: auth.secret rotated; statuses: unset -> failed\n"
    ), out
    assert "app-secret" not in out

    assert main(["check-config", str(current), "--against", str(current)]) == 0
    assert capsys.readouterr().out.endswith(f"reload from {current}: no change\n")


def test_check_config_refuses_adapter_options_the_worker_would_refuse(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text(
        '[[channels]]\nname = "panel"\nprovider = "wpp"\n[channels.options]\nnonsense = 1\n', encoding="utf-8"
    )
    assert main(["check-config", str(bad)]) == 2
    assert "panel" in capsys.readouterr().err
