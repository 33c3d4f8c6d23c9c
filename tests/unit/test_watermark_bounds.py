"""The channel stage's watermark is bounded by receipt time; data too late for it is counted."""

from __future__ import annotations

from collections import Counter

from prometheus_client import CollectorRegistry

from statusflow_cli.samples import T0
from streams.domain.channel import Policy
from streams.domain.clock import MAX_AHEAD_MS, bounded
from streams.late import count_late, late_counter
from tests.channel_stage import ChannelStage, vonage

POLICY = Policy()  # the worker's defaults: 1 min windows, 5 min allowed lateness
START = T0 + 3_600  # epoch s
HOURS_3 = 3 * 3_600


def test_an_event_time_moves_a_watermark_no_further_than_receipt_allows() -> None:
    assert bounded(1_000, 2_000) == 1_000
    assert bounded(10 * 3_600_000, 0) == MAX_AHEAD_MS
    assert bounded(5_000, None) == 5_000
    assert POLICY.lateness_ms > MAX_AHEAD_MS  # else a stamp ahead could make its own batch late


def test_an_event_stamped_three_hours_ahead_then_20_deliveries_all_count() -> None:
    stage = ChannelStage(POLICY)
    ahead = vonage("ahead", "delivered", START + HOURS_3, received_s=START, campaign="fresh")
    stage.feed([ahead], now=START * 1000)
    (state,) = stage.channels.values()
    assert state.watermark == START * 1000 + MAX_AHEAD_MS
    deliveries = [vonage(f"d{i}", "delivered", START + i, received_s=START + i, campaign="fresh") for i in range(20)]
    for i in range(0, 20, 5):  # in several batches, each after the stamp ahead
        stage.feed(deliveries[i : i + 5], now=(START + i + 5) * 1000)
    stage.tick(now=(START + 30) * 1000 + POLICY.idle_close_ms)
    assert stage.dropped_late == 0
    assert stage.counted("channel") == Counter(delivered=21)
    assert stage.counted("campaign", "fresh") == Counter(delivered=21)
    assert stage.kinds()["failure_rate_spike"] == 0


def test_a_report_too_late_for_every_window_is_counted_not_lost() -> None:
    stage = ChannelStage(POLICY)
    stage.feed([vonage("now", "delivered", START + 1_000, received_s=START + 1_000)], now=(START + 1_000) * 1000)
    # Received now, stamped 1000 s ago: its window's final revision is long published.
    stage.feed([vonage("old", "delivered", START, received_s=START + 1_001)], now=(START + 1_001) * 1000)
    assert (stage.dropped_late, stage.late_transitions) == (1, 1)
    registry = CollectorRegistry()
    counter = late_counter(registry)
    count_late(counter, "channel_windows", "vonage", stage.late_transitions)
    count_late(counter, "channel_windows", "vonage", 0)
    count_late(None, "channel_windows", "vonage", 5)  # a worker without a registry: nothing to do
    sample = registry.get_sample_value(
        "statusflow_worker_events_too_late_total", {"stage": "channel_windows", "provider": "vonage"}
    )
    assert sample == 1.0
