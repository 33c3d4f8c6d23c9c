"""docker-compose.yml cannot run here (no Docker engine); its wiring is checked instead."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from receiver.settings import ReceiverSettings
from streams.settings import WorkerSettings

REPO = Path(__file__).resolve().parents[2]


def _compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((REPO / "docker-compose.yml").read_text(encoding="utf-8"))
    return loaded


def _env_names(settings_cls: type[Any]) -> set[str]:
    """Every environment variable a settings class reads."""
    names = set()
    prefix = settings_cls.model_config.get("env_prefix", "")
    for field_name, field in settings_cls.model_fields.items():
        alias = field.validation_alias
        if alias is not None and hasattr(alias, "choices"):
            names.update(str(c) for c in alias.choices)
        else:
            names.add(f"{prefix}{field_name}".upper())
    names.update(
        f"STATUSFLOW_TOPIC_{name.upper()}" for name in ("raw", "events", "changes", "alerts", "metrics", "dlq", "audit")
    )
    return names


def test_services_exist_and_kafka_runs_in_kraft_mode() -> None:
    services = _compose()["services"]
    assert {"kafka", "topics", "receiver", "worker"} <= set(services)
    kafka_env = services["kafka"]["environment"]
    assert services["kafka"]["image"].startswith("apache/kafka:")
    assert kafka_env["KAFKA_PROCESS_ROLES"] == "broker,controller"


def test_every_statusflow_variable_is_one_the_settings_read() -> None:
    services = _compose()["services"]
    for service, settings_cls in (("receiver", ReceiverSettings), ("worker", WorkerSettings)):
        env = services[service]["environment"]
        unknown = {name for name in env if name not in _env_names(settings_cls)}
        assert not unknown, f"{service} sets variables no setting reads: {sorted(unknown)}"
        assert env["KAFKA_BOOTSTRAP_SERVERS"] == "kafka:9092"


def test_ports_published_match_the_configured_ports() -> None:
    services = _compose()["services"]
    assert services["receiver"]["ports"] == [f"{services['receiver']['environment']['STATUSFLOW_PORT']}:8080"]
    assert services["worker"]["ports"] == [f"{services['worker']['environment']['STATUSFLOW_WEB_PORT']}:6066"]


def test_settings_parse_the_compose_environment(monkeypatch: Any) -> None:
    services = _compose()["services"]
    for name, value in services["worker"]["environment"].items():
        monkeypatch.setenv(name, value)
    settings = WorkerSettings()
    assert (settings.bootstrap_servers, settings.web_port, settings.partitions) == ("kafka:9092", 6066, 8)
