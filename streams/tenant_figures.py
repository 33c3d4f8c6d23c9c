"""Per-tenant figures of the worker's GET /metrics: dead letters by the tenant of their channel.

The channel stage counts them as it folds each batch's signals (streams/core/batches.py counts a
webhook's dead letters under its channel). Tenant label values come from the channels file
only (schemas.access.TenantLabeller): `none` for a channel without a tenant or not configured,
so the series stay bounded by the configuration. A signals record processed again after a
crash counts again: like every Prometheus counter here it is an operational figure, not the
ledger (wa.webhooks.dlq is).

Consumer lag has no tenant: the topics are shared and keys of every tenant hash over every
partition, so a tenant's backlog is the partition's (docs/observability.md).
"""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter

from schemas.access import TenantLabeller
from schemas.channels import ChannelsConfig

TENANT_DEAD_LETTERS = "statusflow_worker_tenant_dead_letters"


class TenantFigures:
    """The per-tenant counters, labelled by the configuration in force (`current`)."""

    def __init__(self, registry: CollectorRegistry, current: Callable[[], ChannelsConfig | None]) -> None:
        self._current = current
        self._tenant_of = TenantLabeller()
        self.dead_letters = Counter(
            TENANT_DEAD_LETTERS,
            "Webhooks dead-lettered by the normalize stage, by the tenant of their channel.",
            ["tenant"],
            registry=registry,
        )

    def tenant(self, channel: str) -> str:
        """The tenant label of `channel`."""
        return self._tenant_of(self._current(), channel)

    def count_dead_letters(self, channel: str, count: int) -> None:
        """Add `count` dead letters of `channel`."""
        if count > 0:
            self.dead_letters.labels(tenant=self.tenant(channel)).inc(count)
