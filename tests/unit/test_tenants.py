"""Tenants in the channels file, and who may read which channel with which token."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from schemas.access import (
    FILTERED,
    NO_TENANT,
    OPEN,
    OPERATOR,
    OPERATOR_ONLY,
    Access,
    Principal,
    bearer_token,
    challenge,
    channel_scope,
    keep_visible,
    may_see,
    tenant_labels,
)
from schemas.channels import ChannelsConfig, load_channels, parse_channels
from schemas.errors import ConfigurationError

ACME_TOKEN = "acme-token-0123456789abcdef"
GLOBEX_TOKEN = "globex-token-0123456789abcdef"
OPERATOR_TOKEN = "operator-token-0123456789abcdef"

TOML = f"""
[operator]
api_token = "{OPERATOR_TOKEN}"

[[tenants]]
name = "acme"
api_token = "{ACME_TOKEN}"

[[tenants]]
name = "globex"

[[channels]]
name = "acme-wa"
provider = "generic"
tenant = "acme"

[[channels]]
name = "globex-wa"
provider = "generic"
tenant = "globex"

[[channels]]
name = "shared-meta"
provider = "meta"
"""


def config(data: dict[str, Any], environ: dict[str, str] | None = None) -> ChannelsConfig:
    return parse_channels(data, environ or {}, source="channels.toml")


def two_tenants(**extra: object) -> dict[str, Any]:
    return {
        "tenants": [{"name": "acme", "api_token": ACME_TOKEN}, {"name": "globex", "api_token": GLOBEX_TOKEN}],
        "channels": [
            {"name": "acme-wa", "provider": "generic", "tenant": "acme"},
            {"name": "globex-wa", "provider": "generic", "tenant": "globex"},
            {"name": "ops", "provider": "meta"},
        ],
        **extra,
    }


def test_file_with_tenants_tokens_from_the_file_and_the_environment(tmp_path: Path) -> None:
    path = tmp_path / "channels.toml"
    path.write_text(TOML, encoding="utf-8")
    loaded = load_channels(path, {"STATUSFLOW_TENANT_GLOBEX_TOKEN": GLOBEX_TOKEN})
    assert [t.name for t in loaded.tenants] == ["acme", "globex"]
    assert loaded.tenants[1].token.get_secret_value() == GLOBEX_TOKEN
    assert loaded.operator is not None
    assert loaded.access_controlled
    assert loaded.get("acme-wa") is not None and loaded.get("acme-wa").tenant == "acme"  # type: ignore[union-attr]


def test_yaml_tenants(tmp_path: Path) -> None:
    path = tmp_path / "channels.yaml"
    path.write_text(
        f"tenants:\n  - {{name: acme-br, api_token: {ACME_TOKEN}}}\n"
        "channels:\n  - {name: a, provider: generic, tenant: acme-br}\n",
        encoding="utf-8",
    )
    assert load_channels(path, {}).tenants[0].name == "acme-br"


def test_the_environment_overrides_a_token_like_channel_secrets() -> None:
    data = two_tenants()
    loaded = config(data, {"STATUSFLOW_TENANT_ACME_TOKEN": "from-the-environment-0123"})
    assert loaded.tenants[0].token.get_secret_value() == "from-the-environment-0123"


def test_dashes_become_underscores_in_the_variable_name() -> None:
    data = {"tenants": [{"name": "acme-br"}], "channels": [{"name": "a", "provider": "generic", "tenant": "acme-br"}]}
    loaded = config(data, {"STATUSFLOW_TENANT_ACME_BR_TOKEN": ACME_TOKEN})
    assert loaded.tenants[0].token.get_secret_value() == ACME_TOKEN


def test_operator_token_from_the_environment_alone() -> None:
    loaded = config({"channels": [{"name": "a", "provider": "generic"}]}, {"STATUSFLOW_OPERATOR_TOKEN": OPERATOR_TOKEN})
    assert loaded.operator is not None and loaded.access_controlled


def test_without_tenants_nothing_is_access_controlled() -> None:
    loaded = config({"channels": [{"name": "a", "provider": "generic"}]})
    assert not loaded.access_controlled
    assert Access.of(loaded) is None
    assert Access.of(None) is None


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (
            {
                "tenants": [{"name": "acme", "api_token": ACME_TOKEN}],
                "channels": [{"name": "a", "provider": "generic", "tenant": "initech"}],
            },
            "channel 'a' names tenant 'initech', which is not configured (tenants: acme)",
        ),
        (
            {"channels": [{"name": "a", "provider": "generic", "tenant": "acme"}]},
            "tenant 'acme', which is not configured (tenants: none: add a [[tenants]] table)",
        ),
        (
            {
                "tenants": [{"name": "acme", "api_token": ACME_TOKEN}, {"name": "acme", "api_token": GLOBEX_TOKEN}],
                "channels": [{"name": "a", "provider": "generic"}],
            },
            "tenant 'acme' is configured twice",
        ),
        (
            {
                "tenants": [
                    {"name": "acme-br", "api_token": ACME_TOKEN},
                    {"name": "acme_br", "api_token": GLOBEX_TOKEN},
                ],
                "channels": [{"name": "a", "provider": "generic"}],
            },
            "tenant 'acme_br' is configured twice (names compare as ACME_BR",
        ),
        (
            {"tenants": [{"name": "acme"}], "channels": [{"name": "a", "provider": "generic"}]},
            "tenant 'acme': needs an api_token (in the file or STATUSFLOW_TENANT_ACME_TOKEN)",
        ),
        (
            {"tenants": [{"name": "acme", "api_token": ""}], "channels": [{"name": "a", "provider": "generic"}]},
            "tenant 'acme': needs an api_token",
        ),
        (
            {
                "tenants": [{"name": "Acme!", "api_token": ACME_TOKEN}],
                "channels": [{"name": "a", "provider": "generic"}],
            },
            "tenant 'Acme!': field name: String should match pattern",
        ),
        (
            {"tenants": {"name": "acme"}, "channels": [{"name": "a", "provider": "generic"}]},
            "'tenants' must be a list of tables",
        ),
        (
            {"operator": {}, "channels": [{"name": "a", "provider": "generic"}]},
            "operator: field api_token: Field required",
        ),
        (
            {"operator": "x", "channels": [{"name": "a", "provider": "generic"}]},
            "'operator' must be a table",
        ),
        (
            {"tenants": [{"name": "acme", "api_token": "short"}], "channels": [{"name": "a", "provider": "generic"}]},
            "api_token is shorter than 16 characters",
        ),
        (
            {
                "tenants": [{"name": "acme", "api_token": ACME_TOKEN, "token": "x"}],
                "channels": [{"name": "a", "provider": "generic"}],
            },
            "tenant 'acme': field token: Extra inputs are not permitted",
        ),
    ],
)
def test_bad_tenant_configuration_is_named(data: dict[str, Any], expected: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        config(data)
    assert expected in str(caught.value)
    assert str(caught.value).startswith("channels.toml: ")


def test_two_principals_with_one_token_are_refused_without_quoting_it() -> None:
    data = two_tenants(operator={"api_token": ACME_TOKEN})
    with pytest.raises(ConfigurationError) as caught:
        config(data)
    assert "tenant 'acme' and the operator have the same api_token" in str(caught.value)
    assert ACME_TOKEN not in str(caught.value)


def test_tokens_appear_in_no_error_and_no_repr() -> None:
    data: dict[str, Any] = {
        "tenants": [{"name": "acme", "api_token": "tiny-secret"}],
        "channels": [{"name": "a", "provider": "generic"}],
    }
    with pytest.raises(ConfigurationError) as caught:
        config(data)
    assert "tiny-secret" not in str(caught.value)
    data = {
        "tenants": [{"name": "acme", "api_token": 12345678901234567}],
        "channels": [{"name": "a", "provider": "generic"}],
    }
    with pytest.raises(ConfigurationError) as number:
        config(data)
    assert "12345678901234567" not in str(number.value)
    loaded = config(two_tenants(operator={"api_token": OPERATOR_TOKEN}))
    for text in (repr(loaded), str(loaded), repr(loaded.tenants), loaded.model_dump_json()):
        assert ACME_TOKEN not in text and OPERATOR_TOKEN not in text
    shown = repr(Access.of(loaded))
    assert ACME_TOKEN not in shown and "tokens=" not in shown  # not even the digests


def test_bearer_header_parsing() -> None:
    assert bearer_token(f"Bearer {ACME_TOKEN}") == ACME_TOKEN
    assert bearer_token(f"bearer   {ACME_TOKEN} ") == ACME_TOKEN
    assert bearer_token(f"Basic {ACME_TOKEN}") is None
    assert bearer_token("Bearer") is None
    assert bearer_token("Bearer ") is None
    assert bearer_token(None) is None
    assert bearer_token("") is None


def test_tokens_map_to_their_principal() -> None:
    access = Access.of(config(two_tenants(operator={"api_token": OPERATOR_TOKEN})))
    assert access is not None
    assert access.authenticate(f"Bearer {ACME_TOKEN}") == Principal("acme")
    assert access.authenticate(f"Bearer {GLOBEX_TOKEN}") == Principal("globex")
    assert access.authenticate(f"Bearer {OPERATOR_TOKEN}") == OPERATOR
    assert access.authenticate(f"Bearer {ACME_TOKEN}x") is None
    assert access.authenticate(f"Bearer {ACME_TOKEN[:-1]}") is None
    assert access.authenticate(None) is None
    assert access.authenticate(ACME_TOKEN) is None  # no scheme: not a bearer token


def test_a_tenant_sees_its_own_channels_only() -> None:
    access = Access.of(config(two_tenants(operator={"api_token": OPERATOR_TOKEN})))
    assert access is not None
    acme = Principal("acme")
    assert access.may_see(acme, "generic", "acme-wa")
    assert not access.may_see(acme, "generic", "globex-wa")
    assert not access.may_see(acme, "meta", "acme-wa")  # the channel is generic's
    assert not access.may_see(acme, "meta", "ops")  # no tenant: the operator's only
    assert not access.may_see(acme, "generic", "default")  # unconfigured
    assert all(access.may_see(OPERATOR, p, c) for p, c in [("generic", "globex-wa"), ("meta", "ops"), ("x", "y")])
    assert access.visible(acme) == frozenset({("generic", "acme-wa")})
    assert access.visible(OPERATOR) is None
    pairs = [("generic", "globex-wa"), ("generic", "acme-wa"), ("meta", "ops")]
    assert keep_visible(access, acme, pairs) == [("generic", "acme-wa")]
    assert keep_visible(None, None, pairs) == pairs  # development mode
    assert not may_see(access, None, "generic", "acme-wa")  # no principal under access control: nothing


def test_decisions_401_for_no_or_wrong_token_404_for_another_tenants_channel() -> None:
    access = Access.of(config(two_tenants(operator={"api_token": OPERATOR_TOKEN})))
    assert access is not None
    acme, globex = f"Bearer {ACME_TOKEN}", f"Bearer {GLOBEX_TOKEN}"
    operator = f"Bearer {OPERATOR_TOKEN}"
    mine, theirs = channel_scope("generic", "acme-wa"), channel_scope("generic", "globex-wa")
    assert access.decide(OPEN, None).allowed
    assert access.decide(mine, None).status == 401
    assert access.decide(mine, "Bearer wrong-token-0123456789").status == 401
    assert access.decide(mine, acme).principal == Principal("acme")
    assert access.decide(theirs, acme).status == 404
    assert access.decide(theirs, globex).allowed
    assert access.decide(theirs, operator).allowed
    assert access.decide(FILTERED, acme).principal == Principal("acme")
    assert access.decide(FILTERED, None).status == 401
    assert access.decide(OPERATOR_ONLY, acme).status == 404
    assert access.decide(OPERATOR_ONLY, operator).allowed


def test_challenge_says_whether_a_token_was_refused() -> None:
    assert challenge(token_given=False) == 'Bearer realm="statusflow"'
    assert challenge(token_given=True) == 'Bearer realm="statusflow", error="invalid_token"'


def test_tenant_labels_come_from_the_configuration_only() -> None:
    labels = tenant_labels(config(two_tenants()))
    assert labels == {"acme-wa": "acme", "globex-wa": "globex", "ops": NO_TENANT}
    assert labels.get("made-up-by-a-request", NO_TENANT) == NO_TENANT
    assert tenant_labels(None) == {}


def test_the_example_file_loads_with_every_secret_from_the_environment() -> None:
    example = Path(__file__).resolve().parents[2] / "examples" / "channels-tenants.toml"
    env = {
        "STATUSFLOW_CHANNEL_ACME_WA_SECRET": "s1",
        "STATUSFLOW_CHANNEL_GLOBEX_WA_SECRET": "s2",
        "STATUSFLOW_TENANT_ACME_TOKEN": ACME_TOKEN,
        "STATUSFLOW_TENANT_GLOBEX_TOKEN": GLOBEX_TOKEN,
        "STATUSFLOW_OPERATOR_TOKEN": OPERATOR_TOKEN,
    }
    access = Access.of(load_channels(example, env))
    assert access is not None
    assert access.visible(Principal("acme")) == frozenset({("generic", "acme-wa")})
    assert access.authenticate(f"Bearer {OPERATOR_TOKEN}") == OPERATOR
