"""Which sinks an alert goes to: the configured routes in order, then the default route."""

from __future__ import annotations

from collections.abc import Sequence

from notifier.alerts import SEVERITY_RANK, Alert
from notifier.settings import Route


def matches(route: Route, alert: Alert) -> bool:
    """Every condition the route sets holds for the alert."""
    checks = (
        (route.tenants, alert.tenant),
        (route.channels, alert.channel),
        (route.providers, alert.provider),
        (route.kinds, alert.kind),
        (route.severities, alert.severity),
    )
    if any(allowed is not None and value not in allowed for allowed, value in checks):
        return False
    return route.min_severity is None or SEVERITY_RANK.get(alert.severity, 0) >= SEVERITY_RANK[route.min_severity]


def sinks_for(alert: Alert, routes: Sequence[Route], default: Sequence[str]) -> tuple[str, ...]:
    """The sinks of the first matching route (and of the routes after it while they say continue);
    the default sinks when none matches. Each sink once, in the order first named."""
    chosen: list[str] = []
    matched = False
    for route in routes:
        if not matches(route, alert):
            continue
        matched = True
        chosen.extend(sink for sink in route.sinks if sink not in chosen)
        if not route.keep_going:
            break
    return tuple(chosen) if matched else tuple(dict.fromkeys(default))
