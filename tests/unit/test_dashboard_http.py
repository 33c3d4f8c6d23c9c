"""The dashboard's HTTP side: page, static files, snapshot JSON, SSE, /metrics, settings, CLI."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from dashboard.access_web import scope_of
from dashboard.context import METRICS, SERVICE, SETTINGS
from dashboard.fold import DashboardState, apply_alert, apply_funnel, apply_metric, snapshot
from dashboard.observability import DashboardMetrics
from dashboard.service import DashboardService
from dashboard.settings import DashboardSettings
from dashboard.views import setup_routes
from statusflow_cli.main import build_parser
from streams.access_web import CurrentAccess, access_middleware
from tests.unit.test_dashboard_fold import CAMPAIGN, META, T, alert, cohort, metric


@pytest.fixture
async def client() -> AsyncIterator[TestClient[Any, Any]]:
    """The routes over a service that is not started (no broker): its snapshot is set by the test.
    No channels file: the access middleware lets everything through (dashboard/access_web.py)."""
    settings = DashboardSettings(bootstrap_servers="127.0.0.1:1")
    app = web.Application(middlewares=[access_middleware(CurrentAccess(lambda: None), scope_of)])
    app[SETTINGS] = settings
    app[METRICS] = DashboardMetrics.create()
    app[SERVICE] = DashboardService(settings, app[METRICS])
    setup_routes(app)
    async with TestClient(TestServer(app)) as test_client:
        yield test_client


def _snapshot() -> dict[str, Any]:
    state = DashboardState()
    apply_metric(state, metric(META, T, sent=4, delivered=3, read=1))
    apply_metric(state, metric(CAMPAIGN, T, queued=2))
    apply_funnel(state, cohort("meta", None, 0, attempted=4, delivered=3, read=1, sent=1))
    apply_funnel(state, cohort("wpp", "c-77", 0, attempted=2, queued=2))
    apply_alert(state, alert("channel_logout", at=T, severity="critical"))
    lag = {"rows": [{"group": "statusflow", "topic": "wa.status.events", "lag": 7, "partitions": 4}], "updated_at": T}
    return snapshot(state, lag=lag, receiver={}, now_ms=T)


async def test_the_page_and_its_assets_are_served_from_the_package(client: TestClient[Any, Any]) -> None:
    page = await client.get("/")
    html = await page.text()
    assert page.status == 200 and page.content_type == "text/html"
    assert '<script src="/static/app.js">' in html and 'id="funnel-channels"' in html
    script = await client.get("/static/app.js")
    assert script.status == 200 and "EventSource" in await script.text()
    assert (await client.get("/static/style.css")).status == 200


async def test_snapshot_and_stream_carry_the_service_snapshot(client: TestClient[Any, Any]) -> None:
    client.app[SERVICE].latest = _snapshot()
    response = await client.get("/api/snapshot")
    body = await response.json()
    assert body["funnel"]["channels"][0]["counts"]["delivered"] == 3
    assert body["funnel"]["campaigns"][0]["campaign"] == "c-77"
    # A service that is not running sends the current snapshot and ends the stream.
    stream = await client.get("/api/stream")
    assert stream.headers["Content-Type"] == "text/event-stream"
    text = await stream.text()
    event = next(line for line in text.splitlines() if line.startswith("data: "))
    assert text.startswith("retry: 2000\n") and "event: snapshot" in text
    assert orjson.loads(event.removeprefix("data: ")) == body


async def test_metrics_export_the_funnel_lag_and_firing_conditions(client: TestClient[Any, Any]) -> None:
    client.app[METRICS].update(_snapshot(), now_ms=T + 3_000)
    text = await (await client.get("/metrics")).text()
    assert 'statusflow_dashboard_messages{channel="main",provider="meta",status="delivered"} 3.0' in text
    campaign = 'statusflow_dashboard_campaign_messages{campaign="c-77",channel="main",provider="wpp",status="queued"}'
    assert f"{campaign} 2.0" in text
    assert 'statusflow_dashboard_consumer_lag{group="statusflow",topic="wa.status.events"} 7.0' in text
    assert 'statusflow_dashboard_alerts_firing{kind="channel_logout"} 1.0' in text
    assert "statusflow_dashboard_lag_age_seconds 3.0" in text
    assert (await client.get("/healthz")).status == 200


def test_settings_default_to_the_workers_groups_and_the_local_receiver(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = DashboardSettings()
    assert (settings.dashboard_host, settings.dashboard_port) == ("127.0.0.1", 8090)
    assert settings.lag_groups() == ["statusflow-normalize", "statusflow"]
    assert settings.receiver_metrics_urls() == ["http://127.0.0.1:8080/metrics"]
    monkeypatch.setenv("STATUSFLOW_APP_ID", "prod")
    monkeypatch.setenv("STATUSFLOW_DASHBOARD_RECEIVER_METRICS", "http://a:8080/metrics, http://b:8080/metrics")
    settings = DashboardSettings()
    assert settings.lag_groups() == ["prod-normalize", "prod"]
    assert settings.receiver_metrics_urls() == ["http://a:8080/metrics", "http://b:8080/metrics"]
    monkeypatch.setenv("STATUSFLOW_DASHBOARD_LAG_GROUPS", "one,two")
    assert DashboardSettings().lag_groups() == ["one", "two"]


def test_cli_dashboard_passes_its_flags_to_the_server(monkeypatch: pytest.MonkeyPatch) -> None:
    served: list[DashboardSettings] = []
    monkeypatch.setattr("dashboard.__main__.main", served.append)
    args = build_parser().parse_args(["dashboard", "--port", "9999", "--receiver-metrics", "http://r:1/metrics"])
    assert args.func(args) == 0
    assert served[0].dashboard_port == 9999
    assert served[0].receiver_metrics_urls() == ["http://r:1/metrics"]
    assert served[0].dashboard_host == "127.0.0.1"


def test_cli_dashboard_has_help(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        build_parser().parse_args(["dashboard", "--help"])
    assert exit_info.value.code == 0
    assert "8090" in capsys.readouterr().out
