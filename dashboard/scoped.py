"""A tenant's dashboard: the snapshot of the channels it may see, and of nothing else (pure).

The dashboard folds every channel of the deployment into one DashboardState. A tenant's page
is the same fold restricted to its (provider, channel) pairs: every list is filtered and every
total ("all channels", alert and dead-letter counts, the receiver's request rates) is computed
again from what is left, so no figure of another tenant's channel leaks into a sum.

Two figures are not per channel: consumer lag (the worker's groups share every partition
among all tenants; it tells whether the figures are current) is shown as it is, and the
receivers' addresses are replaced by their number.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Mapping
from typing import Any

from dashboard.fold import DashboardState, snapshot
from dashboard.requests import RequestHistory

Visible = frozenset[tuple[str, str]]


def scoped_state(state: DashboardState, visible: Visible) -> DashboardState:
    """A copy of `state` holding only the channels in `visible` (shared values, new containers)."""

    def keep(provider: object, channel: object) -> bool:
        return (provider, channel) in visible

    windows = {
        key: scope
        for key, scope in state.windows.items()
        if scope and keep(next(iter(scope.values())).provider, next(iter(scope.values())).channel)
    }
    alerts = {i: a for i, a in state.alerts.items() if keep(a.get("provider"), a.get("channel"))}
    opened = {k: a for k, a in state.opened.items() if keep(a.get("provider"), a.get("channel"))}
    # A closing is keyed `<opening kind>:<provider>:<channel>` (dashboard/fold.py).
    closed = {k: at for k, at in state.closed.items() if keep(*k.split(":", 1)[1].partition(":")[::2])}
    by_channel = {k: n for k, n in state.dead_letters_by_channel.items() if keep(*k.partition(":")[::2])}
    latest_dead = deque(d for d in state.latest_dead_letters if keep(d["provider"], d["channel"]))
    cohorts = {k: r for k, r in state.cohorts.items() if keep(r["provider"], r["channel"])}
    return DashboardState(
        windows_per_scope=state.windows_per_scope,
        alerts_kept=state.alerts_kept,
        dead_letters_kept=state.dead_letters_kept,
        windows=windows,
        alerts=alerts,
        alert_order=deque(i for i in state.alert_order if i in alerts),
        # Distinct alerts seen is a deployment-wide count: a tenant gets those still held.
        alerts_seen=len(alerts),
        opened=opened,
        closed=closed,
        dead_letter_ids=set(),  # ids carry no channel: the count comes from dead_letters_by_channel
        dead_letters_by_channel=by_channel,
        latest_dead_letters=latest_dead,
        cohorts=cohorts,
        cohorts_kept=state.cohorts_kept,
        records={
            "funnel": len(cohorts),
            "metrics": sum(len(scope) for scope in windows.values()),
            "alerts": len(alerts),
            "dead_letters": sum(by_channel.values()),
        },
    )


def scoped_snapshot(
    state: DashboardState,
    visible: Visible,
    *,
    lag: Mapping[str, Any],
    requests: RequestHistory,
    now_ms: int,
    series_points: int,
) -> dict[str, Any]:
    """The snapshot a tenant that may see `visible` gets (GET /api/snapshot, its SSE events)."""
    keep: Callable[[str, str], bool] = lambda provider, channel: (provider, channel) in visible  # noqa: E731
    receiver = requests.view(keep)
    receiver["targets"] = [{"url": f"receiver {i + 1}", "up": t["up"]} for i, t in enumerate(receiver["targets"])]
    document = snapshot(
        scoped_state(state, visible), lag=lag, receiver=receiver, now_ms=now_ms, series_points=series_points
    )
    document["dead_letters"]["count"] = sum(document["dead_letters"]["by_channel"].values())
    return document
