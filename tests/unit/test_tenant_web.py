"""The worker's and the dashboard's access middlewares, and a tenant's dashboard snapshot."""

from __future__ import annotations

import ast
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from dashboard.access_web import scope_of as dashboard_scope
from dashboard.fold import DashboardState, apply_alert, apply_dead_letter, apply_funnel, apply_metric, snapshot
from dashboard.requests import RequestHistory, Scrape
from dashboard.scoped import scoped_snapshot
from dashboard.settings import DashboardSettings
from schemas.access import FILTERED, OPEN, OPERATOR_ONLY, channel_scope
from schemas.channels import ChannelsConfig, parse_channels
from schemas.codec import codec
from schemas.live_channels import LiveChannels
from statusflow_cli.main import build_parser
from streams.access_web import CurrentAccess, access_middleware, forwarded_headers, request_may_see, scope_of
from streams.domain.funnel import Cohort, CohortRow, funnel_record
from streams.domain.metrics import Scope, WindowAggregate, metric_record

ACME_TOKEN = "acme-token-0123456789abcdef"
GLOBEX_TOKEN = "globex-token-0123456789abcdef"
OPERATOR_TOKEN = "operator-token-0123456789abcdef"
REPO = Path(__file__).resolve().parents[2]


def tenants() -> ChannelsConfig:
    return parse_channels(
        {
            "operator": {"api_token": OPERATOR_TOKEN},
            "tenants": [{"name": "acme", "api_token": ACME_TOKEN}, {"name": "globex", "api_token": GLOBEX_TOKEN}],
            "channels": [
                {"name": "acme-wa", "provider": "generic", "tenant": "acme"},
                {"name": "globex-wa", "provider": "generic", "tenant": "globex"},
            ],
        },
        {},
    )


def test_the_decision_modules_import_no_io_framework() -> None:
    for module in ("schemas/access.py", "schemas/tenants.py", "dashboard/scoped.py"):
        tree = ast.parse((REPO / module).read_text(encoding="utf-8"))
        imported = {
            (node.module or "").split(".")[0] if isinstance(node, ast.ImportFrom) else alias.name.split(".")[0]
            for node in ast.walk(tree)
            if isinstance(node, ast.Import | ast.ImportFrom)
            for alias in node.names
        }
        assert not imported & {"aiohttp", "faust", "aiokafka", "mode"}, module


def test_worker_routes_map_to_scopes() -> None:
    assert scope_of("/healthz", {}) == OPEN
    assert scope_of("/metrics", {}) == OPEN
    assert scope_of("/readyz", {}) == OPEN
    assert (
        scope_of("/messages/generic/acme-wa/42", {"provider": "generic", "first": "acme-wa", "second": "42"})
        == FILTERED
    )
    assert scope_of("/messages/generic/42", {"provider": "generic", "message_id": "42"}) == FILTERED
    assert scope_of("/channels/generic/acme-wa", {"provider": "generic", "channel": "acme-wa"}) == channel_scope(
        "generic", "acme-wa"
    )
    assert scope_of("/funnel/generic/acme-wa", {"provider": "generic", "channel": "acme-wa"}) == channel_scope(
        "generic", "acme-wa"
    )
    assert scope_of("/router/", {}) == OPERATOR_ONLY  # Faust's own pages
    assert scope_of("/", {}) == OPERATOR_ONLY


def test_dashboard_routes_map_to_scopes() -> None:
    for path in ("/", "/healthz", "/metrics", "/static/app.js"):
        assert dashboard_scope(path, {}) == OPEN
    assert dashboard_scope("/api/snapshot", {}) == FILTERED
    assert dashboard_scope("/api/stream", {}) == FILTERED
    assert dashboard_scope("/api/anything-new", {}) == OPERATOR_ONLY


async def _client(config: ChannelsConfig | None) -> TestClient[web.Request, web.Application]:
    async def may_see(request: web.Request) -> web.Response:
        channel = request.match_info.get("channel", "default")
        return web.json_response({"may_see": request_may_see(request, "generic", channel)})

    app = web.Application(middlewares=[access_middleware(CurrentAccess(lambda: config))])
    app.router.add_get("/channels/{provider}/{channel}", may_see)
    app.router.add_get("/messages/{provider}/{channel}/{message_id}", may_see)
    app.router.add_get("/healthz", may_see)
    app.router.add_get("/router/", may_see)
    client = TestClient(TestServer(app))
    await client.start_server()
    return client


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_middleware_401_404_and_the_handlers_check() -> None:
    client = await _client(tenants())
    try:
        response = await client.get("/channels/generic/acme-wa")
        assert response.status == 401
        assert response.headers["WWW-Authenticate"] == 'Bearer realm="statusflow"'
        response = await client.get("/channels/generic/acme-wa", headers=_bearer("wrong-token-0123456789"))
        assert response.status == 401
        assert response.headers["WWW-Authenticate"] == 'Bearer realm="statusflow", error="invalid_token"'
        assert "wrong-token" not in await response.text()

        response = await client.get("/channels/generic/acme-wa", headers=_bearer(ACME_TOKEN))
        assert (response.status, await response.json()) == (200, {"may_see": True})
        response = await client.get("/channels/generic/globex-wa", headers=_bearer(ACME_TOKEN))
        assert (response.status, await response.json()) == (404, {"error": "not found"})
        response = await client.get("/channels/generic/globex-wa", headers=_bearer(OPERATOR_TOKEN))
        assert (response.status, await response.json()) == (200, {"may_see": True})

        # Messages reach their handler, which decides (and answers its own 404).
        response = await client.get("/messages/generic/globex-wa/42", headers=_bearer(ACME_TOKEN))
        assert (response.status, await response.json()) == (200, {"may_see": False})
        response = await client.get("/messages/generic/globex-wa/42")
        assert response.status == 401

        assert (await client.get("/healthz")).status == 200
        assert (await client.get("/router/", headers=_bearer(ACME_TOKEN))).status == 404
        assert (await client.get("/router/", headers=_bearer(OPERATOR_TOKEN))).status == 200
    finally:
        await client.close()


async def test_without_tenants_everything_stays_open() -> None:
    for config in (None, parse_channels({"channels": [{"name": "acme-wa", "provider": "generic"}]}, {})):
        client = await _client(config)
        try:
            response = await client.get("/messages/generic/anything/42")
            assert (response.status, await response.json()) == (200, {"may_see": True})
            assert (await client.get("/router/")).status == 200
        finally:
            await client.close()


async def test_the_rules_follow_the_configuration_in_force() -> None:
    current: list[ChannelsConfig | None] = [None]
    rules = CurrentAccess(lambda: current[0])
    assert rules() is None
    current[0] = tenants()
    first = rules()
    assert first is not None and rules() is first  # rebuilt only when the configuration changes
    current[0] = None
    assert rules() is None


def test_forwarded_requests_carry_the_token() -> None:
    class Carrier:
        def __init__(self, headers: dict[str, str]) -> None:
            self.headers = headers

    assert forwarded_headers(Carrier({"Authorization": "Bearer x", "Cookie": "c"})) == {"Authorization": "Bearer x"}
    assert forwarded_headers(Carrier({})) == {}


def test_request_may_see_fails_closed_without_the_middleware() -> None:
    assert not request_may_see(object(), "generic", "acme-wa")


# ---- a tenant's dashboard ------------------------------------------------------------------

T = 1_750_030_020_000
HOUR = 3_600_000


def _metric(channel: str, **transitions: int) -> dict[str, Any]:
    agg = WindowAggregate()
    agg.transitions.update(transitions)
    record = metric_record(Scope("generic", channel), T, 60_000, agg, revision=0, final=False)
    return codec("metric_window").decode(codec("metric_window").encode(record))


def _cohort(channel: str, **counts: int) -> dict[str, Any]:
    row = CohortRow(Cohort("generic", channel, None, T), counts=Counter(counts), revision=0)
    return codec("cohort_funnel").decode(codec("cohort_funnel").encode(funnel_record(row, HOUR)))


def _alert(channel: str) -> dict[str, Any]:
    record = {
        "alert_id": f"logout:{channel}",
        "alert_key": f"channel_logout:generic:{channel}",
        "kind": "channel_logout",
        "severity": "critical",
        "state": "firing",
        "provider": "generic",
        "channel": channel,
        "detail": f"{channel} logged out",
        "occurred_at": T,
    }
    return codec("alert").decode(codec("alert").encode(record))


def _dead_letter(channel: str, request_id: str) -> dict[str, Any]:
    return {"request_id": request_id, "reason": "bad", "provider": "generic", "channel": channel, "failed_at": T}


def _state() -> DashboardState:
    state = DashboardState()
    for channel, delivered in (("acme-wa", 3), ("globex-wa", 5)):
        apply_metric(state, _metric(channel, sent=delivered, delivered=delivered))
        apply_funnel(state, _cohort(channel, attempted=delivered, delivered=delivered))
        apply_alert(state, _alert(channel))
    for i in range(2):
        apply_dead_letter(state, _dead_letter("acme-wa", f"a{i}"))
    for i in range(5):
        apply_dead_letter(state, _dead_letter("globex-wa", f"g{i}"))
    return state


def _history() -> RequestHistory:
    history = RequestHistory()
    counts = {("generic", "acme-wa", "200"): 4.0, ("generic", "globex-wa", "200"): 10.0, ("-", "-", "404"): 1.0}
    history.add(Scrape(at=0.0, counts={"http://10.0.0.7:8080/metrics": {k: 0.0 for k in counts}}))
    history.add(Scrape(at=2.0, counts={"http://10.0.0.7:8080/metrics": counts}))
    return history


def test_a_tenants_snapshot_holds_its_channels_and_totals_of_them_only() -> None:
    state = _state()
    lag: dict[str, Any] = {"rows": [], "idle_groups": [], "error": None}
    visible = frozenset({("generic", "acme-wa")})
    doc = scoped_snapshot(state, visible, lag=lag, requests=_history(), now_ms=T, series_points=60)
    assert [row["key"] for row in doc["funnel"]["channels"]] == ["generic:acme-wa"]
    assert set(doc["cohort_series"]) == {"generic:acme-wa", "all"}
    assert doc["cohort_series"]["all"][0]["counts"]["attempted"] == 3  # acme's alone
    assert set(doc["series"]) == {"generic:acme-wa", "all"}
    assert doc["series"]["all"][0]["counts"]["delivered"] == 3
    assert [a["channel"] for a in doc["alerts"]["latest"]] == ["acme-wa"]
    assert [a["channel"] for a in doc["alerts"]["firing"]] == ["acme-wa"]
    assert doc["alerts"]["seen"] == 1
    assert doc["dead_letters"]["count"] == 2
    assert doc["dead_letters"]["by_channel"] == {"generic:acme-wa": 2}
    assert {d["channel"] for d in doc["dead_letters"]["latest"]} == {"acme-wa"}
    assert doc["receiver"]["total"] == 4.0
    assert doc["receiver"]["rate"] == 2.0
    assert doc["receiver"]["targets"] == [{"url": "receiver 1", "up": True}]
    assert "globex" not in str(doc) and "10.0.0.7" not in str(doc)
    # The whole deployment's snapshot is untouched by a tenant's.
    full = snapshot(state, lag=lag, receiver=_history().view(), now_ms=T)
    assert len(full["funnel"]["channels"]) == 2 and full["dead_letters"]["count"] == 7
    assert full["receiver"]["total"] == 15.0


def test_a_tenant_without_channels_sees_an_empty_page() -> None:
    lag: dict[str, Any] = {"rows": [], "idle_groups": [], "error": None}
    doc = scoped_snapshot(_state(), frozenset(), lag=lag, requests=_history(), now_ms=T, series_points=60)
    assert doc["funnel"] == {"channels": [], "campaigns": []}
    assert doc["dead_letters"]["count"] == 0 and doc["alerts"]["latest"] == []
    assert doc["receiver"]["total"] == 0


def test_statusflow_dashboard_takes_the_channels_file(monkeypatch: pytest.MonkeyPatch) -> None:
    served: list[DashboardSettings] = []
    monkeypatch.setattr("dashboard.__main__.main", served.append)
    args = build_parser().parse_args(["dashboard", "--channels-file", "tenants.toml"])
    assert args.func(args) == 0
    assert served[0].channels_file == Path("tenants.toml")


def test_a_reloaded_file_rotates_tokens_without_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "channels.toml"
    channel = '[[channels]]\nname = "acme-wa"\nprovider = "generic"\ntenant = "acme"\n'
    path.write_text(f'[[tenants]]\nname = "acme"\napi_token = "{ACME_TOKEN}"\n\n{channel}', encoding="utf-8")
    live = LiveChannels.load(path, {})
    rules = CurrentAccess(lambda: live.current)
    before = rules()
    assert before is not None and before.authenticate(f"Bearer {ACME_TOKEN}") is not None
    rotated = "acme-rotated-token-0123456789"
    path.write_text(f'[[tenants]]\nname = "acme"\napi_token = "{rotated}"\n\n{channel}', encoding="utf-8")
    assert live.reload("test")
    after = rules()
    assert after is not None and after is not before
    assert after.authenticate(f"Bearer {ACME_TOKEN}") is None
    assert after.authenticate(f"Bearer {rotated}") is not None
