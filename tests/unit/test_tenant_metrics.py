"""Per-tenant figures on /metrics: label values come from the channels file only."""

from __future__ import annotations

from pathlib import Path

import orjson
from aiohttp.test_utils import TestClient, TestServer
from prometheus_client import CollectorRegistry

from receiver.app import create_app
from receiver.settings import ReceiverSettings
from schemas.channels import ChannelsConfig, parse_channels
from streams.tenant_figures import TENANT_DEAD_LETTERS, TenantFigures
from tests.unit.test_receiver_http import RecordingPublisher


def tenants() -> ChannelsConfig:
    return parse_channels(
        {
            "tenants": [{"name": "acme", "api_token": "acme-token-0123456789abcdef"}],
            "channels": [
                {"name": "acme-wa", "provider": "generic", "tenant": "acme"},
                {"name": "ops", "provider": "generic"},
            ],
        },
        {},
    )


async def test_receiver_counts_requests_by_tenant_with_bounded_labels(tmp_path: Path) -> None:
    settings = ReceiverSettings(spool_dir=tmp_path / "spool")
    client = TestClient(TestServer(create_app(settings, RecordingPublisher(), channels=tenants())))
    await client.start_server()
    try:
        body = orjson.dumps({"id": "42", "status": "sent"})
        for path in ("/webhooks/generic/acme-wa", "/webhooks/generic/acme-wa", "/webhooks/generic/ops"):
            response = await client.post(path, data=body, headers={"Content-Type": "application/json"})
            assert response.status == 200
        for made_up in ("/webhooks/generic/acme-x", "/webhooks/generic/evil-1", "/webhooks/nope/x"):
            assert (await client.post(made_up, data=body, headers={"Content-Type": "application/json"})).status == 404
        text = await (await client.get("/metrics")).text()
    finally:
        await client.close()
    lines = [line for line in text.splitlines() if line.startswith("statusflow_receiver_tenant_requests_total")]
    assert sorted(lines) == [
        'statusflow_receiver_tenant_requests_total{code="200",tenant="acme"} 2.0',
        'statusflow_receiver_tenant_requests_total{code="200",tenant="none"} 1.0',
        'statusflow_receiver_tenant_requests_total{code="404",tenant="none"} 3.0',
    ]


def test_worker_counts_dead_letters_by_tenant_of_the_configuration_in_force() -> None:
    registry = CollectorRegistry()
    current: list[ChannelsConfig | None] = [tenants()]
    figures = TenantFigures(registry, lambda: current[0])
    figures.count_dead_letters("acme-wa", 2)
    figures.count_dead_letters("ops", 1)
    figures.count_dead_letters("unknown-channel", 1)
    figures.count_dead_letters("acme-wa", 0)
    current[0] = None  # development mode: no tenants at all
    figures.count_dead_letters("acme-wa", 1)

    def value(tenant: str) -> float | None:
        return registry.get_sample_value(f"{TENANT_DEAD_LETTERS}_total", {"tenant": tenant})

    assert (value("acme"), value("none")) == (2.0, 3.0)
