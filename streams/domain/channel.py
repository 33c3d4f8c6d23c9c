"""Per-channel state: metric windows, alert budget and rollups, spikes, logouts.

The channel agent (keyed by channel) feeds every signal of one channel through `apply` and
calls `tick` on a timer. Windows live in event time: a channel's watermark is the latest event
time it has seen, each bounded by the receipt time of its webhook (streams/domain/clock.py: a
report stamped hours ahead must not make the following ones late); a window closes once the
watermark passes its end plus a grace period, or once the channel has been idle for a while
(so a quiet channel still reports), and is corrected with a new revision by late data until
the watermark passes the allowed lateness; what comes later still is counted (Outputs).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import orjson

from streams.domain import spike
from streams.domain.alerting import AlertSpec
from streams.domain.metrics import Scope, WindowAggregate, metric_record, window_start


@dataclasses.dataclass(frozen=True, slots=True)
class Policy:
    """Thresholds and windows; from the worker's settings."""

    window_ms: int = 60_000
    grace_ms: int = 5_000
    lateness_ms: int = 300_000
    idle_close_ms: int = 10_000
    alert_limit_per_window: int = 20
    spike_threshold: float = 0.2
    spike_min_volume: int = 20
    spike_windows: int = 5
    dead_letter_threshold: int = 10


@dataclasses.dataclass(slots=True)
class WindowEntry:
    """One scope's window: its aggregate and what has been emitted of it."""

    scope: Scope
    start: int
    agg: WindowAggregate
    revision: int = -1  # last emitted revision; -1 = not emitted yet
    dirty: bool = True


@dataclasses.dataclass(slots=True)
class ChannelState:
    """Everything the channel agent keeps for one channel."""

    provider: str
    channel: str
    watermark: int = 0
    last_signal_wall: int = 0
    logged_out_at: int | None = None
    windows: dict[tuple[str, int], WindowEntry] = dataclasses.field(default_factory=dict)
    alert_budget: dict[int, list[int]] = dataclasses.field(default_factory=dict)  # start -> [passed, suppressed]
    dead_letters: dict[int, int] = dataclasses.field(default_factory=dict)
    spike_firing_since: int | None = None

    @property
    def key(self) -> str:
        """`provider:channel`."""
        return f"{self.provider}:{self.channel}"


@dataclasses.dataclass(slots=True)
class Outputs:
    """Records to publish after a signal or a tick."""

    alerts: list[dict[str, object]] = dataclasses.field(default_factory=list)
    metrics: list[dict[str, object]] = dataclasses.field(default_factory=list)
    dropped_late: int = 0
    # Status transitions in the partials dropped as too late for every window: the worker
    # counts them on its GET /metrics (streams/late.py), they never vanish silently.
    late_transitions: int = 0


def add_window(
    state: ChannelState, scope: Scope, start: int, agg: WindowAggregate, *, policy: Policy, out: Outputs
) -> None:
    """Merge a partial aggregate; late data re-emits a corrected revision of a closed window."""
    if state.watermark >= start + policy.window_ms + policy.lateness_ms:
        out.dropped_late += 1
        out.late_transitions += sum(agg.transitions.values())
        return
    entry = state.windows.get((scope.key, start))
    if entry is None:
        state.windows[(scope.key, start)] = WindowEntry(scope=scope, start=start, agg=agg)
        return
    entry.agg.merge(agg)
    entry.dirty = True
    if entry.revision >= 0:  # already published: publish the correction now
        _emit(entry, policy, out, final=False)


def observe(state: ChannelState, max_event_at: int, now: int) -> None:
    """Advance the watermark and note activity."""
    state.watermark = max(state.watermark, max_event_at)
    state.last_signal_wall = now


def add_alert(
    state: ChannelState,
    alert: dict[str, object],
    policy: Policy,
    now: int,
    out: Outputs,
    *,
    budgeted: bool | None = None,
) -> None:
    """Per-message alerts pass up to the per-window limit; the rest are rolled up.

    `budgeted` (default: the alert names a message) puts a channel alert that stands for one
    message under the same limit: a not-found report without a message id.
    """
    if not (alert.get("message_key") is not None if budgeted is None else budgeted):
        out.alerts.append(alert)
        return
    budget = state.alert_budget.setdefault(window_start(now, policy.window_ms), [0, 0])
    if budget[0] < policy.alert_limit_per_window:
        budget[0] += 1
        out.alerts.append(alert)
    else:
        budget[1] += 1


def apply_signals(
    state: ChannelState,
    signals: ChannelSignalsView,
    policy: Policy,
    now: int,
) -> Outputs:
    """Everything one ChannelSignals record means for its channel."""
    out = Outputs()
    if signals.max_event_at is not None:
        observe(state, signals.max_event_at, now)
        resolve_logout(state, signals.max_event_at, out)
    for kind, at, detail in signals.channel_events:
        if kind == NUMBER_NOT_FOUND:
            add_alert(state, number_not_found_alert(state, at, detail), policy, now, out, budgeted=True)
        else:
            channel_event(state, kind, at, detail, out)
        observe(state, at, now)
    for scope, start, agg in signals.windows:
        add_window(state, scope, start, agg, policy=policy, out=out)
    for alert in signals.alerts:
        add_alert(state, alert, policy, now, out)
    if signals.dead_letters:
        add_dead_letters(state, signals.dead_letters, policy, now, out)
    if signals.tick:
        ticked = tick(state, policy, now)
        out.alerts += ticked.alerts
        out.metrics += ticked.metrics
    return out


@dataclasses.dataclass(frozen=True, slots=True)
class ChannelSignalsView:
    """The decoded content of a ChannelSignals record."""

    max_event_at: int | None = None
    dead_letters: int = 0
    tick: bool = False
    channel_events: list[tuple[str, int, str | None]] = dataclasses.field(default_factory=list)
    windows: list[tuple[Scope, int, WindowAggregate]] = dataclasses.field(default_factory=list)
    alerts: list[dict[str, object]] = dataclasses.field(default_factory=list)
    # Send-cohort deltas (campaign, cohort start, signed counts): folded into the cohort table
    # beside the channel state (streams/funnel_stage.py), not into it.
    funnel: list[tuple[str | None, int, dict[str, int]]] = dataclasses.field(default_factory=list)


# A provider reported a number not found without naming a message (WPP, generic): the channel's
# number_not_found alert stands for it (streams/adapters/generic.py).
NUMBER_NOT_FOUND = "number_not_found"


def number_not_found_alert(state: ChannelState, at: int, detail: str | None) -> dict[str, object]:
    """The channel's number_not_found alert for a report that names no message: `detail` says
    which number (masked by the normalize stage, like every recipient); the id keeps a
    re-delivered report the same alert."""
    spec = _channel_alert(state, NUMBER_NOT_FOUND, "warning", at, f"number not found ({detail or 'no number given'})")
    return dataclasses.replace(spec, id_parts=(state.key, NUMBER_NOT_FOUND, at, detail or "")).to_record()


def channel_event(state: ChannelState, kind: str, at: int, detail: str | None, out: Outputs) -> None:
    """Logout (or connection closed) and reconnection of the channel; connection events come
    judged by their state (streams/adapters/generic.py), so `connected` only ever resolves.

    Webhooks reach the channel out of order (they are spread over the raw topic's partitions):
    a logout older than what the channel has already been heard from (a later `connected` or
    status, the watermark) is still reported, and resolved at once, as if it had come first.
    """
    if kind == "logout" and state.logged_out_at is None:
        state.logged_out_at = at
        out.alerts.append(
            _channel_alert(state, "channel_logout", "critical", at, detail or "channel logged out").to_record()
        )
        resolve_logout(state, state.watermark, out)
    elif kind in {"connected", "login"}:
        resolve_logout(state, at, out)


def resolve_logout(state: ChannelState, at: int, out: Outputs) -> None:
    """The channel sends again after a logout: resolve the logout alert."""
    if state.logged_out_at is not None and at > state.logged_out_at:
        since = state.logged_out_at
        state.logged_out_at = None
        spec = _channel_alert(state, "channel_resolved", "info", at, "channel sends again after a logout")
        out.alerts.append(dataclasses.replace(spec, id_parts=(state.key, "channel_resolved", since)).to_record())


def add_dead_letters(state: ChannelState, count: int, policy: Policy, now: int, out: Outputs) -> None:
    """Dead letters per window; one alert when a window crosses the threshold."""
    start = window_start(now, policy.window_ms)
    before = state.dead_letters.get(start, 0)
    state.dead_letters[start] = before + count
    if before < policy.dead_letter_threshold <= before + count:
        spec = _channel_alert(
            state, "dead_letter_spike", "critical", now, f"{before + count} dead letters in one window"
        )
        spec = dataclasses.replace(
            spec,
            id_parts=(state.key, "dead_letter_spike", start),
            window_start=start,
            window_end=start + policy.window_ms,
            count=before + count,
            threshold=float(policy.dead_letter_threshold),
        )
        out.alerts.append(spec.to_record())


def tick(state: ChannelState, policy: Policy, now: int) -> Outputs:
    """Close windows that are due, roll up suppressed alerts, evaluate the failure-rate spike."""
    out = Outputs()
    idle = now - state.last_signal_wall >= policy.idle_close_ms
    for key, entry in list(state.windows.items()):
        end = entry.start + policy.window_ms
        if entry.revision < 0 and (state.watermark >= end + policy.grace_ms or idle):
            _emit(entry, policy, out, final=False)
        if state.watermark >= end + policy.lateness_ms:
            if entry.dirty and entry.revision >= 0:
                _emit(entry, policy, out, final=True)
            del state.windows[key]
    current = window_start(now, policy.window_ms)
    for start, (passed, suppressed) in list(state.alert_budget.items()):
        if start < current:
            if suppressed:
                spec = _channel_alert(
                    state, "rollup", "warning", start + policy.window_ms,
                    f"{suppressed} more message alerts in this window (after {passed} sent individually)",
                )  # fmt: skip
                out.alerts.append(
                    dataclasses.replace(
                        spec,
                        id_parts=(state.key, "rollup", start),
                        window_start=start,
                        window_end=start + policy.window_ms,
                        count=suppressed,
                    ).to_record()
                )
            del state.alert_budget[start]
    for start in [s for s in state.dead_letters if s < current - policy.window_ms]:
        del state.dead_letters[start]
    _spike(state, policy, out)
    return out


def _spike(state: ChannelState, policy: Policy, out: Outputs) -> None:
    """The failure-rate spike rule (streams/domain/spike.py) over the channel's recent windows."""
    horizon = state.watermark - policy.spike_windows * policy.window_ms
    measured = spike.measure(
        entry.agg for entry in state.windows.values() if entry.scope.campaign is None and entry.start >= horizon
    )
    phase = spike.evaluate(
        state.spike_firing_since is not None,
        measured,
        threshold=policy.spike_threshold,
        min_volume=policy.spike_min_volume,
    )
    if phase is None:
        return
    if phase is spike.Phase.FIRING:
        since = state.spike_firing_since = window_start(state.watermark, policy.window_ms)
    else:
        since, state.spike_firing_since = state.spike_firing_since or 0, None
    rate, volume = measured.rate, measured.outcomes
    out.alerts.append(_spike_alert(state, policy, phase.value, rate=rate, volume=volume, since=since).to_record())


def _spike_alert(state: ChannelState, policy: Policy, phase: str, *, rate: float, volume: int, since: int) -> AlertSpec:
    spec = _channel_alert(
        state,
        "failure_rate_spike",
        "critical" if phase == "firing" else "info",
        state.watermark,
        f"failure rate {rate:.0%} of {volume} reported outcomes (delivered or failed) in "
        f"{policy.spike_windows} windows "
        f"(threshold {policy.spike_threshold:.0%}): {phase}",
    )
    return dataclasses.replace(
        spec,
        state=phase,
        id_parts=(state.key, "failure_rate_spike", since, phase),
        window_start=state.watermark - policy.spike_windows * policy.window_ms,
        window_end=state.watermark,
        count=volume,
        value=rate,
        threshold=policy.spike_threshold,
    )


def _channel_alert(state: ChannelState, kind: str, severity: str, at: int, detail: str) -> AlertSpec:
    return AlertSpec(
        kind=kind,
        severity=severity,
        detail=f"{state.key}: {detail}",
        occurred_at=at,
        alert_key=f"{kind}:{state.key}",
        id_parts=(state.key, kind, at),
        provider=state.provider,
        channel=state.channel,
    )


def _emit(entry: WindowEntry, policy: Policy, out: Outputs, *, final: bool) -> None:
    entry.revision += 1
    entry.dirty = False
    out.metrics.append(
        metric_record(entry.scope, entry.start, policy.window_ms, entry.agg, revision=entry.revision, final=final)
    )


def view(state: ChannelState, policy: Policy) -> dict[str, object]:
    """The JSON answer of GET /channels/{provider}/{channel}."""
    windows = sorted(
        (e for e in state.windows.values() if e.scope.campaign is None), key=lambda e: e.start, reverse=True
    )
    return {
        "channel_key": state.key,
        "provider": state.provider,
        "channel": state.channel,
        "connection": "logged_out" if state.logged_out_at is not None else "connected",
        "logged_out_at": state.logged_out_at,
        "watermark": state.watermark,
        "failure_rate_spike": state.spike_firing_since is not None,
        "windows": [
            metric_record(e.scope, e.start, policy.window_ms, e.agg, revision=max(e.revision, 0), final=False)
            for e in windows
        ],
    }


def to_bytes(state: ChannelState) -> bytes:
    """Compact table value."""
    return orjson.dumps(
        {
            "p": state.provider,
            "c": state.channel,
            "wm": state.watermark,
            "ls": state.last_signal_wall,
            "lo": state.logged_out_at,
            "w": [[e.scope.campaign, e.start, e.agg.to_wire(), e.revision, e.dirty] for e in state.windows.values()],
            "ab": [[k, *v] for k, v in state.alert_budget.items()],
            "dl": [[k, v] for k, v in state.dead_letters.items()],
            "sp": state.spike_firing_since,
        }
    )


def from_bytes(data: bytes) -> ChannelState:
    """Inverse of to_bytes."""
    d: dict[str, Any] = orjson.loads(data)
    state = ChannelState(
        provider=d["p"],
        channel=d["c"],
        watermark=d["wm"],
        last_signal_wall=d["ls"],
        logged_out_at=d["lo"],
        alert_budget={k: [p, s] for k, p, s in d["ab"]},
        dead_letters={k: v for k, v in d["dl"]},
        spike_firing_since=d["sp"],
    )
    for campaign, start, agg, revision, dirty in d["w"]:
        scope = Scope(state.provider, state.channel, campaign)
        state.windows[(scope.key, start)] = WindowEntry(scope, start, WindowAggregate.from_wire(agg), revision, dirty)
    return state
