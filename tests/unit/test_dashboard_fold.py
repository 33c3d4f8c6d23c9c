"""The dashboard's pure folds: cohort funnels, metric windows, alerts and dead letters as the topics carry them."""

from __future__ import annotations

from collections import Counter
from typing import Any

from dashboard.fold import (
    DashboardState,
    activity,
    apply_alert,
    apply_dead_letter,
    apply_funnel,
    apply_metric,
    cohort_series,
    funnel,
    latency,
    series,
    snapshot,
)
from schemas.codec import codec
from streams.domain.funnel import Cohort, CohortRow, funnel_record
from streams.domain.metrics import Scope, WindowAggregate, bucket_of, metric_record

WINDOW = 60_000
T = 1_750_030_020_000  # a window start


def metric(
    scope: Scope, start: int, *, revision: int = 0, latency_ms: int | None = None, **transitions: int
) -> dict[str, Any]:
    """A MetricWindow as the worker builds it, through the topic's codec."""
    agg = WindowAggregate()
    agg.transitions.update(transitions)
    if latency_ms is not None:
        agg.sent_to_delivered[bucket_of(latency_ms)] += 1
    record = metric_record(scope, start, WINDOW, agg, revision=revision, final=False)
    return codec("metric_window").decode(codec("metric_window").encode(record))


def alert(
    kind: str, *, at: int, state: str = "firing", severity: str = "warning", channel: str = "main", key: str = ""
) -> dict[str, Any]:
    record = {
        "alert_id": f"{kind}:{channel}:{at}:{state}",
        "alert_key": key or f"{kind}:meta:{channel}",
        "kind": kind,
        "severity": severity,
        "state": state,
        "provider": "meta",
        "channel": channel,
        "detail": f"{kind} happened",
        "occurred_at": at,
    }
    return codec("alert").decode(codec("alert").encode(record))


HOUR = 3_600_000


def cohort(provider: str, campaign: str | None, start: int, *, revision: int = 0, **counts: int) -> dict[str, Any]:
    """A CohortFunnel as the worker publishes it, through the topic's codec."""
    row = CohortRow(Cohort(provider, "main", campaign, start), counts=Counter(counts), revision=revision)
    record = funnel_record(row, HOUR)
    return codec("cohort_funnel").decode(codec("cohort_funnel").encode(record))


META = Scope("meta", "main")
WPP = Scope("wpp", "main")
CAMPAIGN = Scope("wpp", "main", "c-77")


def test_funnel_sums_the_latest_revision_of_each_cohort_with_rates_within_bounds() -> None:
    state = DashboardState()
    apply_funnel(state, cohort("meta", None, 0, attempted=4, sent=4))
    apply_funnel(
        state, cohort("meta", None, 0, revision=2, attempted=4, delivered=3, read=3, delivered_implied=2, sent=1)
    )
    apply_funnel(state, cohort("meta", None, 0, revision=1, attempted=4, delivered=1, sent=3))  # older: ignored
    apply_funnel(state, cohort("meta", None, HOUR, attempted=6, failed=1, delivered=5, read=1))
    apply_funnel(state, cohort("meta", "c-1", HOUR, attempted=6, failed=1, delivered=5, read=1))

    rows = funnel(state)
    (meta,) = rows["channels"]
    assert meta["counts"] == {"attempted": 10, "delivered": 8, "read": 4, "failed": 1, "expired": 0, "pending": 1}
    assert meta["rates"] == {"delivery_rate": 0.8, "read_rate": 0.5, "failure_rate": 0.1}
    assert meta["cohorts"] == 2
    assert [(r["key"], r["counts"]["attempted"]) for r in rows["campaigns"]] == [("meta:main#c-1", 6)]
    points = cohort_series(state, points=10)
    assert [p["cohort_start"] for p in points["all"]] == [0, HOUR]  # campaigns left out
    assert points["meta:main"][0]["read_rate"] == 1.0
    assert state.records["funnel"] == 5


def test_cohort_rates_are_null_without_a_denominator() -> None:
    state = DashboardState()
    apply_funnel(state, cohort("meta", None, 0))
    assert funnel(state)["channels"][0]["rates"] == {"delivery_rate": None, "read_rate": None, "failure_rate": None}


def test_activity_sums_the_latest_revision_of_each_window_per_channel_and_campaign() -> None:
    state = DashboardState()
    apply_metric(state, metric(META, T, sent=4, delivered=2))
    apply_metric(state, metric(META, T, revision=1, sent=5, delivered=3))  # late data corrected the window
    apply_metric(state, metric(META, T, sent=4, delivered=2))  # an older revision, redelivered: ignored
    apply_metric(state, metric(META, T + WINDOW, sent=1, read=2, failed=1))
    apply_metric(state, metric(WPP, T, queued=3, created=2))
    apply_metric(state, metric(CAMPAIGN, T, queued=3, created=2))

    rows = activity(state)
    meta = next(r for r in rows["channels"] if r["key"] == "meta:main")
    assert meta["counts"] == {"queued": 0, "created": 0, "sent": 6, "failed": 1, "delivered": 3, "read": 2}
    assert meta["windows"] == 2
    assert "rates" not in meta  # activity is no funnel: its ratios are no rates
    assert [r["key"] for r in rows["channels"]] == ["meta:main", "wpp:main"]
    assert [(r["key"], r["campaign"], r["counts"]["queued"]) for r in rows["campaigns"]] == [
        ("wpp:main#c-77", "c-77", 3)
    ]
    assert state.records["metrics"] == 6


def test_windows_beyond_the_bound_drop_the_oldest() -> None:
    state = DashboardState(windows_per_scope=2)
    for i in range(4):
        apply_metric(state, metric(META, T + i * WINDOW, sent=1))
    assert sorted(w.window_start for w in state.windows["meta:main"].values()) == [T + 2 * WINDOW, T + 3 * WINDOW]
    assert activity(state)["channels"][0]["counts"]["sent"] == 2


def test_series_sums_channels_per_window_without_campaigns_and_keeps_the_last_points() -> None:
    state = DashboardState()
    apply_metric(state, metric(META, T, sent=4, delivered=2))
    apply_metric(state, metric(WPP, T, sent=4, delivered=4))
    apply_metric(state, metric(CAMPAIGN, T, sent=4, delivered=4))
    apply_metric(state, metric(META, T + WINDOW, sent=2, failed=2))
    apply_metric(state, metric(META, T + 2 * WINDOW, sent=1))

    out = series(state, points=2)
    assert [p["window_start"] for p in out["all"]] == [T + WINDOW, T + 2 * WINDOW]
    everything = series(state, points=10)["all"]
    assert everything[0]["counts"]["sent"] == 8  # campaign windows repeat their channel's counts
    assert everything[1]["counts"]["failed"] == 2
    assert "delivery_rate" not in everything[0]
    assert "wpp:main#c-77" not in out
    assert [p["window_start"] for p in out["wpp:main"]] == [T]


def test_latency_shows_the_latest_window_that_measured_any() -> None:
    state = DashboardState()
    apply_metric(state, metric(META, T, sent=1, delivered=1, latency_ms=3_000))
    apply_metric(state, metric(META, T + WINDOW, sent=1))  # nothing measured: not shown
    apply_metric(state, metric(WPP, T, sent=1))
    rows = latency(state)
    assert rows == [
        {
            "key": "meta:main",
            "window_start": T,
            "sent_to_delivered_ms": {"p50": 5_000, "p90": 5_000, "p99": 5_000},
            "delivered_to_read_ms": {},
        }
    ]


def test_alerts_are_deduplicated_by_id_and_bounded() -> None:
    state = DashboardState(alerts_kept=3)
    for i in range(5):
        record = alert("message_failed", at=T + i)
        apply_alert(state, record)
        apply_alert(state, record)  # at-least-once: the repeat changes nothing
    view = snapshot(state, lag={}, receiver={}, now_ms=0)["alerts"]
    assert view["seen"] == 5
    assert [a["occurred_at"] for a in view["latest"]] == [T + 4, T + 3, T + 2]
    assert view["by_kind"] == {"message_failed": 3}
    assert view["firing"] == []  # per-message alerts are events, not conditions


def test_a_logout_fires_until_resolved_whatever_the_order_the_two_arrive_in() -> None:
    logout = alert("channel_logout", at=T, severity="critical")
    resolved = alert("channel_resolved", at=T + 5, severity="info")
    other = alert("channel_logout", at=T, severity="critical", channel="other", key="channel_logout:meta:other")
    for order in ([logout, resolved, other], [resolved, other, logout]):
        state = DashboardState()
        for record in order:
            apply_alert(state, record)
        firing = snapshot(state, lag={}, receiver={}, now_ms=0)["alerts"]["firing"]
        assert [(a["kind"], a["channel"]) for a in firing] == [("channel_logout", "other")]


def test_a_failure_rate_spike_fires_then_resolves() -> None:
    state = DashboardState()
    apply_alert(state, alert("failure_rate_spike", at=T, severity="critical"))
    assert [a["kind"] for a in snapshot(state, lag={}, receiver={}, now_ms=0)["alerts"]["firing"]] == [
        "failure_rate_spike"
    ]
    apply_alert(state, alert("failure_rate_spike", at=T + WINDOW, state="resolved", severity="info"))
    assert snapshot(state, lag={}, receiver={}, now_ms=0)["alerts"]["firing"] == []
    # A new spike after the resolution fires again.
    apply_alert(state, alert("failure_rate_spike", at=T + 2 * WINDOW, severity="critical"))
    assert len(snapshot(state, lag={}, receiver={}, now_ms=0)["alerts"]["firing"]) == 1


def test_dead_letters_count_distinct_webhooks_per_channel() -> None:
    state = DashboardState(dead_letters_kept=2)
    dead_letter = codec("dead_letter")
    for request_id, channel in (("r1", "main"), ("r1", "main"), ("r2", "main"), ("r3", "other")):
        record = {
            "request_id": request_id,
            "provider": "meta",
            "channel": channel,
            "reason": "body has no entry[]",
            "failed_at": T,
            "source_topic": "wa.webhooks.raw",
            "source_partition": 0,
            "source_offset": 1,
            "raw": b"{}",
        }
        apply_dead_letter(state, dead_letter.decode(dead_letter.encode(record)))
    view = snapshot(state, lag={}, receiver={}, now_ms=0)["dead_letters"]
    assert view["count"] == 3
    assert view["by_channel"] == {"meta:main": 2, "meta:other": 1}
    assert [d["request_id"] for d in view["latest"]] == ["r3", "r2"]
    assert state.records["dead_letters"] == 4
