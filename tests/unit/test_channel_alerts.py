"""Per-message alerts, rate limits and rollups, spikes, logouts, metric windows per channel."""

from __future__ import annotations

import dataclasses

from streams.domain.alerting import message_alerts
from streams.domain.channel import (
    ChannelState,
    Outputs,
    Policy,
    add_alert,
    add_dead_letters,
    add_window,
    channel_event,
    from_bytes,
    observe,
    resolve_logout,
    tick,
    to_bytes,
)
from streams.domain.lattice import merge
from streams.domain.metrics import Scope, WindowAggregate
from streams.domain.status import FailureReason, Status
from tests.factories import status_event

POLICY = Policy(window_ms=60_000, grace_ms=5_000, lateness_ms=120_000, idle_close_ms=10_000, alert_limit_per_window=3)


def failed_state(message_id: str, reason: FailureReason = FailureReason.ERROR):  # type: ignore[no-untyped-def]
    return merge(None, status_event(Status.FAILED, 1_000, message_id=message_id, failure_reason=reason))


def test_failure_kinds_and_deterministic_ids() -> None:
    (alert,) = message_alerts(None, failed_state("m1", FailureReason.NOT_FOUND))
    assert alert.kind == "number_not_found"
    (again,) = message_alerts(None, failed_state("m1", FailureReason.NOT_FOUND))
    assert again.to_record()["alert_id"] == alert.to_record()["alert_id"]
    (expired,) = message_alerts(None, failed_state("m2", FailureReason.EXPIRED))
    assert expired.kind == "message_expired"


def test_failure_after_delivery_is_an_anomaly_alert_and_a_repeat_raises_nothing() -> None:
    delivered = merge(None, status_event(Status.DELIVERED, 1_000))
    failed = merge(delivered, status_event(Status.FAILED, 2_000, failure_reason=FailureReason.ERROR))
    kinds = [a.kind for a in message_alerts(delivered, failed)]
    assert kinds == ["message_failed", "failure_after_delivery"]
    assert message_alerts(failed, failed) == []


def test_per_message_alerts_are_limited_per_window_and_rolled_up() -> None:
    state = ChannelState("meta", "shop")
    out = Outputs()
    for i in range(10):
        (alert,) = message_alerts(None, failed_state(f"m{i}"))
        add_alert(state, alert.to_record(), POLICY, now=1_000, out=out)
    assert len(out.alerts) == 3
    rolled = tick(state, POLICY, now=61_000).alerts
    (rollup,) = [a for a in rolled if a["kind"] == "rollup"]
    assert rollup["count"] == 7
    assert tick(state, POLICY, now=62_000).alerts == []


def test_logout_fires_once_and_resolves_when_the_channel_sends_again() -> None:
    state = ChannelState("wpp", "store")
    out = Outputs()
    channel_event(state, "logout", 5_000, None, out)
    channel_event(state, "logout", 6_000, None, out)
    resolve_logout(state, 4_000, out)  # an older status changes nothing
    resolve_logout(state, 9_000, out)
    assert [(a["kind"], a["severity"]) for a in out.alerts] == [
        ("channel_logout", "critical"),
        ("channel_resolved", "info"),
    ]


def test_windows_close_once_then_late_data_gives_a_new_revision_of_the_same_window() -> None:
    state = ChannelState("meta", "shop")
    scope = Scope("meta", "shop")
    agg = WindowAggregate()
    agg.transitions["sent"] = 4
    out = Outputs()
    observe(state, 30_000, now=100)
    add_window(state, scope, 0, agg, policy=POLICY, out=out)
    assert tick(state, POLICY, now=200).metrics == []  # window still open
    observe(state, 66_000, now=300)
    (first,) = tick(state, POLICY, now=400).metrics
    late = WindowAggregate()
    late.transitions["sent"] = 1
    add_window(state, scope, 0, late, policy=POLICY, out=out)
    (correction,) = out.metrics
    assert (first["revision"], correction["revision"]) == (0, 1)
    assert correction["metric_id"] == first["metric_id"]
    assert correction["transitions"]["sent"] == 5  # type: ignore[index]
    observe(state, 500_000, now=500)
    add_window(state, scope, 0, late, policy=POLICY, out=out)
    assert out.dropped_late == 1


def test_failure_rate_spike_fires_and_resolves() -> None:
    state = ChannelState("meta", "shop")
    policy = dataclasses.replace(POLICY, spike_min_volume=10, spike_threshold=0.3)
    out = Outputs()
    bad = WindowAggregate()
    bad.transitions.update({"sent": 10, "failed": 10})
    observe(state, 30_000, now=0)
    add_window(state, Scope("meta", "shop"), 0, bad, policy=policy, out=out)
    firing = [a for a in tick(state, policy, now=1).alerts if a["kind"] == "failure_rate_spike"]
    assert [a["state"] for a in firing] == ["firing"]
    good = WindowAggregate()
    good.transitions.update({"sent": 200, "delivered": 200})
    add_window(state, Scope("meta", "shop"), 60_000, good, policy=policy, out=out)
    observe(state, 90_000, now=2)
    resolved = [a for a in tick(state, policy, now=3).alerts if a["kind"] == "failure_rate_spike"]
    assert [a["state"] for a in resolved] == ["resolved"]


def test_dead_letter_spike_alerts_once_per_window() -> None:
    state = ChannelState("meta", "shop")
    out = Outputs()
    for _ in range(POLICY.dead_letter_threshold + 5):
        add_dead_letters(state, 1, POLICY, now=1_000, out=out)
    assert [a["kind"] for a in out.alerts] == ["dead_letter_spike"]


def test_channel_state_round_trips() -> None:
    state = ChannelState("meta", "shop", watermark=5, logged_out_at=3)
    agg = WindowAggregate()
    agg.transitions["read"] = 2
    add_window(state, Scope("meta", "shop", "c1"), 0, agg, policy=POLICY, out=Outputs())
    add_alert(state, message_alerts(None, failed_state("m"))[0].to_record(), POLICY, now=1, out=Outputs())
    assert from_bytes(to_bytes(state)) == state
