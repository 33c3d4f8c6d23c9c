"""The channels file: TOML or YAML, secrets from the environment, clear errors for bad files."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from schemas.channels import PROVIDERS, ChannelConfig, load_channels, parse_channels
from schemas.errors import ConfigurationError

TOML = """
[[channels]]
name = "shop-br"
provider = "meta"
statuses = ["sent", "delivered", "read", "failed"]
[channels.auth]
kind = "meta_hmac"
secret = "from-the-file"
verify_token = "vt"

[[channels]]
name = "sms-us"
provider = "twilio"
public_url = "https://hooks.example.com/"
[channels.auth]
kind = "twilio_signature"

[[channels]]
name = "custom"
provider = "generic"
[channels.options]
message_id = "$.data.id"
status = "$.data.state"
"""

YAML = """
channels:
  - name: aivo-1
    provider: aivo
    auth: {kind: header_token, secret: tok}
  - name: weni-1
    provider: weni
    auth: {kind: header_token, header: X-Weni-Token, secret: tok2}
  - name: basic-1
    provider: wpp
    auth: {kind: basic, username: wpp, secret: pw}
"""


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_toml_channels_with_secrets_from_the_environment(tmp_path: Path) -> None:
    env = {"STATUSFLOW_CHANNEL_SMS_US_SECRET": "twilio-token", "STATUSFLOW_CHANNEL_SHOP_BR_SECRET": "from-env"}
    config = load_channels(write(tmp_path, "channels.toml", TOML), env)
    shop, sms, custom = config.channels
    assert (shop.name, shop.provider, shop.auth.kind) == ("shop-br", "meta", "meta_hmac")
    assert shop.auth.secret is not None
    assert shop.auth.secret.get_secret_value() == "from-env"  # the environment wins over the file
    assert shop.wants("read")
    assert not shop.wants("queued")
    assert sms.auth.secret is not None
    assert sms.auth.secret.get_secret_value() == "twilio-token"
    assert sms.public_url == "https://hooks.example.com"
    assert custom.wants("queued")
    assert custom.options == {"message_id": "$.data.id", "status": "$.data.state"}
    assert config.get("sms-us") is sms
    assert config.get("nope") is None
    assert "twilio-token" not in repr(config)
    assert "from-env" not in str(config.model_dump())


def test_yaml_channels(tmp_path: Path) -> None:
    config = load_channels(write(tmp_path, "channels.yaml", YAML), {})
    aivo, weni, basic = config.channels
    assert aivo.auth.token_header == "x-auth-token"
    assert weni.auth.token_header == "x-weni-token"
    assert (basic.auth.kind, basic.auth.username) == ("basic", "wpp")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('[[channels]]\nname = "a"\nprovider = "telegram"\n', ["channel 'a'", "field provider"]),
        (
            '[[channels]]\nname = "a"\nprovider = "meta"\n[channels.auth]\nkind = "meta_hmac"\n',
            ["channel 'a'", "secret"],
        ),
        ('[[channels]]\nname = "a"\nprovider = "meta"\nstatuses = ["sent", "seen"]\n', ["channel 'a'", "statuses"]),
        ('[[channels]]\nname = "a"\nprovider = "wpp"\n[channels.auth]\nkind = "basic"\nsecret = "x"\n', ["username"]),
        ('[[channels]]\nname = "a"\nprovider = "meta"\ncolour = "red"\n', ["channel 'a'", "field colour"]),
        ('[[channels]]\nname = "Bad Name"\nprovider = "meta"\n', ["channel 'Bad Name'", "field name"]),
        ('[[channels]]\nprovider = "meta"\n', ["channel #1", "field name"]),
        ('[[channels]]\nname = "a"\nprovider = "meta"\n[[channels]]\nname = "a"\nprovider = "wpp"\n', ["twice"]),
        ('[[channels]]\nname = "a"\nprovider = "meta"\npublic_url = "hooks.example.com"\n', ["public_url"]),
        ("channels = []\n", ["non-empty 'channels'"]),
        ("[[channels]\n", ["not valid TOML"]),
    ],
)
def test_bad_configuration_names_the_file_the_channel_and_the_field(
    tmp_path: Path, text: str, expected: list[str]
) -> None:
    path = write(tmp_path, "channels.toml", text)
    with pytest.raises(ConfigurationError) as caught:
        load_channels(path, {})
    message = str(caught.value)
    assert str(path) in message
    for part in expected:
        assert part in message


def test_unknown_extension_and_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="must end in"):
        load_channels(write(tmp_path, "channels.ini", "x"), {})
    with pytest.raises(ConfigurationError, match="cannot read"):
        load_channels(tmp_path / "absent.toml", {})


def test_every_provider_is_known() -> None:
    assert set(PROVIDERS) == {"meta", "twilio", "infobip", "vonage", "gupshup", "aivo", "weni", "wpp", "generic"}
    for provider in PROVIDERS:
        assert ChannelConfig(name="c", provider=provider).provider == provider  # type: ignore[arg-type]


def test_parse_channels_accepts_data_already_parsed() -> None:
    config = parse_channels({"channels": [{"name": "x", "provider": "infobip"}]}, {})
    assert config.channels[0].auth.kind == "none"


def test_channels_module_imports_no_io_framework() -> None:
    path = Path(__file__).resolve().parents[2] / "schemas" / "channels.py"
    tree = ast.parse(path.read_text(encoding="utf-8"))
    imported = {(node.module or "").split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)} | {
        alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names
    }
    assert not imported & {"aiohttp", "aiokafka", "faust", "mode"}
