"""The alert as the notifier sees it: an `Alert` record of wa.alerts (schemas/alert.avsc)."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

# Alerts about one message: a burst of them on a channel is grouped into one notification.
PER_MESSAGE_KINDS = frozenset(
    {
        "message_failed",
        "number_not_found",
        "message_expired",
        "failure_after_delivery",
        "stuck_in_sent",
        "stuck_in_queued",
        "stuck_in_created",
    }
)

# channel_resolved is its own kind with state `firing` in the record: it is what clears a logout.
RESOLVES = {"channel_resolved": "channel_logout"}

# The severity a condition fires with: its resolution carries `info`, but Alertmanager finds
# the alert to resolve by its labels, so the resolution must repeat the firing ones.
FIRING_SEVERITY = {"channel_logout": "critical", "failure_rate_spike": "critical"}

SEVERITY_RANK = {"info": 0, "warning": 1, "critical": 2}


@dataclasses.dataclass(frozen=True, slots=True)
class Alert:
    """The fields of an Alert record that notifications use."""

    alert_id: str
    alert_key: str
    kind: str
    severity: str
    state: str
    detail: str
    occurred_at: int
    provider: str | None = None
    channel: str | None = None
    campaign: str | None = None
    message_key: str | None = None
    error_code: str | None = None
    error_title: str | None = None
    count: int = 1
    value: float | None = None
    threshold: float | None = None
    tenant: str | None = None

    @classmethod
    def from_record(cls, record: Mapping[str, Any], tenant: str | None = None) -> Alert:
        """From a decoded Alert record; `tenant` from the notifier's tenants setting."""
        names = {field.name for field in dataclasses.fields(cls)} - {"tenant"}
        return cls(**{name: record[name] for name in names if name in record}, tenant=tenant)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able fields, as the webhook and the parking topic carry them."""
        return dataclasses.asdict(self)

    @property
    def per_message(self) -> bool:
        """Grouped per channel and interval rather than told one by one."""
        return self.kind in PER_MESSAGE_KINDS

    @property
    def condition(self) -> str:
        """The condition this alert is about: a resolution names the kind it clears."""
        return RESOLVES.get(self.kind, self.kind)

    @property
    def resolves(self) -> bool:
        """True when the alert says its condition cleared."""
        return self.state == "resolved" or self.kind in RESOLVES


def tenant_of(channel: str | None, tenants: Mapping[str, frozenset[str]]) -> str | None:
    """The tenant whose channels include `channel` (the first one in the setting's order)."""
    if channel is None:
        return None
    return next((tenant for tenant, channels in tenants.items() if channel in channels), None)
