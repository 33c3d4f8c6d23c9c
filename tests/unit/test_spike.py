"""The failure-rate spike is judged on the outcomes the provider reports, not on `sent`."""

from __future__ import annotations

from collections import Counter

from statusflow_cli.samples import T0
from streams.domain.channel import Policy
from streams.domain.metrics import WindowAggregate
from streams.domain.spike import Phase, SpikeMeasure, evaluate, measure
from tests.channel_stage import ChannelStage, vonage

POLICY = Policy(spike_threshold=0.2, spike_min_volume=20, spike_windows=5)
START = T0 + 3_600  # epoch s


def window(**transitions: int) -> WindowAggregate:
    return WindowAggregate(transitions=Counter(transitions))


def judge(*windows: WindowAggregate, firing: bool = False) -> Phase | None:
    return evaluate(firing, measure(windows), threshold=0.2, min_volume=20)


def test_a_provider_without_sent_is_judged_on_its_deliveries_and_failures() -> None:
    # Vonage: submitted (queued), then delivered or rejected; never `sent`.
    measured = measure([window(queued=1000, delivered=980, failed=20)])
    assert measured == SpikeMeasure(failed=20, outcomes=1000)
    assert measured.rate == 0.02
    assert judge(window(queued=325, delivered=300, failed=25)) is None


def test_reads_without_delivered_count_as_deliveries() -> None:
    # Meta skips `delivered` when delivery and reading happen together.
    assert measure([window(sent=100, read=90, failed=10)]).rate == 0.1


def test_a_spike_needs_the_minimum_volume_of_outcomes() -> None:
    assert judge(window(failed=19)) is None
    assert judge(window(failed=10, delivered=9)) is None
    assert judge(window(failed=10, delivered=10)) is Phase.FIRING


def test_a_firing_spike_resolves_when_the_rate_clears_and_not_before() -> None:
    assert judge(window(failed=30, delivered=100), firing=True) is None  # 23 %: still firing
    assert judge(window(failed=30, delivered=200), firing=True) is Phase.RESOLVED
    assert judge(firing=True) is Phase.RESOLVED  # nothing left in the horizon
    assert judge(window(failed=30, delivered=200)) is None


def _vonage_traffic(channel: str, delivered: int, rejected: int, start_s: int, prefix: str = "") -> list:  # type: ignore[type-arg]
    """Webhooks in arrival order: each message submitted, then delivered or rejected."""
    webhooks = []
    for i in range(delivered + rejected):
        at = start_s + i * 50 // (delivered + rejected)  # spread over less than a minute
        outcome = "delivered" if i < delivered else "rejected"
        code = None if outcome == "delivered" else 1340
        message_id = f"{prefix}{channel}-{i}"
        webhooks.append(vonage(message_id, "submitted", at, received_s=at, channel=channel))
        webhooks.append(vonage(message_id, outcome, at + 2, received_s=at + 2, channel=channel, error_code=code))
    return sorted(webhooks, key=lambda w: w.received_at)


def _run(stage: ChannelStage, webhooks: list) -> int:  # type: ignore[type-arg]
    """Feed in batches of 50 as they arrive; returns the last receipt time (ms)."""
    for i in range(0, len(webhooks), 50):
        batch = webhooks[i : i + 50]
        stage.feed(batch, now=batch[-1].received_at)
    last: int = webhooks[-1].received_at
    return last


def test_300_vonage_deliveries_and_25_rejections_raise_no_spike() -> None:
    stage = ChannelStage(POLICY)
    last = _run(stage, _vonage_traffic("main", delivered=300, rejected=25, start_s=START))
    stage.tick(now=last + POLICY.idle_close_ms)
    assert stage.counted("channel") == Counter(queued=325, delivered=300, failed=25)
    assert stage.kinds()["failure_rate_spike"] == 0
    # The rejections themselves are alerted: 1340, outside the 24-hour window, is an expiry.
    assert stage.kinds()["message_expired"] > 0


def test_a_real_vonage_spike_fires_once_then_resolves_when_deliveries_dilute_it() -> None:
    stage = ChannelStage(POLICY)
    last = _run(stage, _vonage_traffic("burst", delivered=100, rejected=60, start_s=START))
    stage.tick(now=last + POLICY.idle_close_ms)
    stage.tick(now=last + 2 * POLICY.idle_close_ms)
    (firing,) = [a for a in stage.alerts if a["kind"] == "failure_rate_spike"]
    assert (firing["state"], firing["severity"], firing["count"]) == ("firing", "critical", 160)
    assert firing["value"] == 60 / 160
    last = _run(stage, _vonage_traffic("burst", delivered=500, rejected=0, start_s=START + 60, prefix="later-"))
    stage.tick(now=last + POLICY.idle_close_ms)
    spikes = [a for a in stage.alerts if a["kind"] == "failure_rate_spike"]
    assert [a["state"] for a in spikes] == ["firing", "resolved"]
    assert spikes[1]["severity"] == "info"
