"""docker-compose.yml cannot run here (no Docker engine); its wiring is checked instead."""

from __future__ import annotations

import json
import re
from pathlib import Path, PurePosixPath
from typing import Any

import pytest
import yaml
from faust.sensors.prometheus import FaustMetrics
from prometheus_client import CollectorRegistry

from dashboard.observability import DashboardMetrics
from dashboard.settings import DashboardSettings
from receiver.observability import ReceiverMetrics
from receiver.settings import ReceiverSettings
from streams.app import WORKER_METRICS_PREFIX
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
    for service, settings_cls in (
        ("receiver", ReceiverSettings),
        ("worker", WorkerSettings),
        ("dashboard", DashboardSettings),
    ):
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


# The port each statusflow process serves /metrics on, and the variable that binds its address.
METRICS_PORT = {
    "receiver": ("STATUSFLOW_PORT", "STATUSFLOW_HOST"),
    "worker": ("STATUSFLOW_WEB_PORT", "STATUSFLOW_WEB_HOST"),
    "dashboard": ("STATUSFLOW_DASHBOARD_PORT", "STATUSFLOW_DASHBOARD_HOST"),
    "notifier": ("STATUSFLOW_NOTIFY_PORT", "STATUSFLOW_NOTIFY_HOST"),
}


def _exported_names() -> set[str]:
    """Every series name the three processes can export, from the instruments in their code."""
    worker = CollectorRegistry()
    FaustMetrics.create(worker, WORKER_METRICS_PREFIX)
    names: set[str] = set()
    suffixes = {"counter": ("_total", "_created"), "histogram": ("_bucket", "_sum", "_count", "_created")}
    for registry in (ReceiverMetrics.create().registry, worker, DashboardMetrics.create().registry):
        for family in registry.collect():
            names.add(family.name)
            names.update(family.name + suffix for suffix in suffixes.get(family.type, ()))
    return names


def _mounts(service: dict[str, Any]) -> dict[str, Path]:
    """Container path -> the repository file or directory mounted there (each must exist)."""
    mounts = {}
    for volume in service.get("volumes", []):
        source, target = volume.split(":")[:2]
        assert source.startswith("./"), f"{volume}: only files of the repository are mounted"
        mounts[target] = REPO / source
    return mounts


def test_dashboard_service_publishes_its_port_and_scrapes_the_receiver() -> None:
    dashboard = _compose()["services"]["dashboard"]
    env = dashboard["environment"]
    assert dashboard["command"] == ["python", "-m", "dashboard"]
    assert dashboard["ports"] == [f"{env['STATUSFLOW_DASHBOARD_PORT']}:{env['STATUSFLOW_DASHBOARD_PORT']}"]
    receiver_port = _compose()["services"]["receiver"]["environment"]["STATUSFLOW_PORT"]
    assert env["STATUSFLOW_DASHBOARD_RECEIVER_METRICS"] == f"http://receiver:{receiver_port}/metrics"
    assert "COPY dashboard dashboard" in (REPO / "Dockerfile").read_text(encoding="utf-8")


def test_prometheus_and_grafana_are_optional_and_mount_real_files() -> None:
    services = _compose()["services"]
    for name in ("prometheus", "grafana"):
        assert services[name]["profiles"] == ["observability"]
        for target, source in _mounts(services[name]).items():
            assert source.exists(), f"{name} mounts missing {source} at {target}"
    for name in ("kafka", "topics", "receiver", "worker", "dashboard"):
        assert "profiles" not in services[name], f"{name} must run without a profile"
    config = services["prometheus"]["command"][0].removeprefix("--config.file=")
    assert _mounts(services["prometheus"])[config] == REPO / "deploy/prometheus/prometheus.yml"


def test_every_scrape_target_is_a_statusflow_service_on_its_metrics_port() -> None:
    services = _compose()["services"]
    config = yaml.safe_load((REPO / "deploy/prometheus/prometheus.yml").read_text(encoding="utf-8"))
    scraped = set()
    for job in config["scrape_configs"]:
        assert job.get("metrics_path", "/metrics") == "/metrics"
        for static in job["static_configs"]:
            for target in static["targets"]:
                host, port = target.split(":")
                port_var, host_var = METRICS_PORT[host]
                env = services[host]["environment"]
                assert env[port_var] == port, f"{target}: {host} listens on {env[port_var]}"
                assert env[host_var] == "0.0.0.0", f"{host} must listen beyond its container's loopback"
                scraped.add(host)
    assert scraped == set(METRICS_PORT)


def test_grafana_provisions_the_prometheus_datasource_and_the_dashboard() -> None:
    services = _compose()["services"]
    mounts = _mounts(services["grafana"])
    provisioning = mounts["/etc/grafana/provisioning"]
    datasources = yaml.safe_load((provisioning / "datasources/prometheus.yml").read_text(encoding="utf-8"))
    (source,) = datasources["datasources"]
    assert source["url"] == f"http://prometheus:{services['prometheus']['ports'][0].split(':')[1]}"
    providers = yaml.safe_load((provisioning / "dashboards/statusflow.yml").read_text(encoding="utf-8"))
    path = PurePosixPath(providers["providers"][0]["options"]["path"])
    dashboards = mounts[str(path)]
    assert list(dashboards.glob("*.json")), f"no dashboard JSON in {dashboards}"
    home = PurePosixPath(services["grafana"]["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"])
    assert home.parent == path and (dashboards / home.name).exists()
    for dashboard in dashboards.glob("*.json"):
        for panel in json.loads(dashboard.read_text(encoding="utf-8"))["panels"]:
            for target in panel["targets"]:
                assert target["datasource"]["uid"] == source["uid"], f"{panel['title']}: another datasource"


@pytest.mark.parametrize("dashboard", sorted((REPO / "deploy/grafana/dashboards").glob("*.json")), ids=lambda p: p.name)
def test_dashboard_queries_name_only_metrics_the_processes_export(dashboard: Path) -> None:
    exported = _exported_names()
    panels = json.loads(dashboard.read_text(encoding="utf-8"))["panels"]
    used = set()
    for panel in panels:
        assert panel["targets"], f"{panel['title']} has no query"
        for target in panel["targets"]:
            names = set(re.findall(r"\bstatusflow_[a-z0-9_]+", target["expr"]))
            assert names, f"{panel['title']}: {target['expr']} names no statusflow metric"
            unknown = names - exported
            assert not unknown, f"{panel['title']}: {sorted(unknown)} are exported by no process"
            used |= names
    # Every process is on the dashboard.
    assert {name.split("_")[1] for name in used} == {"receiver", "worker", "dashboard"}


def test_the_image_copies_every_installed_package() -> None:
    """`pip install .` in the image installs what pyproject lists: each package must be copied in."""
    import tomllib

    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    packages = {p.rstrip("*") for p in pyproject["tool"]["setuptools"]["packages"]["find"]["include"]}
    copied = set(re.findall(r"^COPY (\w+) \1$", (REPO / "Dockerfile").read_text(encoding="utf-8"), re.MULTILINE))
    assert packages <= copied, f"Dockerfile does not copy {sorted(packages - copied)}"
