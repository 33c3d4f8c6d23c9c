"""The normalize, track and channel stages run in memory on webhooks, for the pure tests of what
the channel stage concludes (windows, alerts, late data) from real provider bodies."""

from __future__ import annotations

import dataclasses
from collections import Counter

import orjson

from schemas.envelope import RawWebhook
from statusflow_cli import samples
from streams.clock import now_ms
from streams.core.batches import ChannelSignals, Keyed, RawRecord, decode_signals, plan_normalize, plan_track
from streams.core.outputs import Source
from streams.domain.channel import ChannelState, Policy, apply_signals


def vonage(
    message_id: str,
    status: str,
    at_s: int,
    *,
    received_s: int,
    channel: str = "main",
    campaign: str | None = None,
    error_code: int | None = None,
) -> RawWebhook:
    """A Vonage status webhook stamped `at_s` (epoch s) and received at `received_s`."""
    body, content_type = samples.vonage(message_id, status, at_s - samples.T0, error_code)
    if campaign is not None:
        body = orjson.dumps({**orjson.loads(body), "client_ref": campaign})
    return RawWebhook(
        request_id=f"req-{message_id}-{status}",
        provider="vonage",
        channel=channel,
        received_at=received_s * 1000,
        content_type=content_type,
        url=f"http://127.0.0.1/webhooks/vonage/{channel}",
        body=body,
    )


@dataclasses.dataclass
class ChannelStage:
    """The three stages over an in-memory table; every output the channel stage made is kept."""

    policy: Policy
    table: dict[bytes, bytes] = dataclasses.field(default_factory=dict)
    channels: dict[bytes, ChannelState] = dataclasses.field(default_factory=dict)
    alerts: list[dict[str, object]] = dataclasses.field(default_factory=list)
    metrics: list[dict[str, object]] = dataclasses.field(default_factory=list)
    dropped_late: int = 0
    late_transitions: int = 0

    def feed(self, webhooks: list[RawWebhook], now: int) -> None:
        """One batch through normalize, track and the channel stage, in that order (the order
        of their records on the channel's partition of the signals topic)."""
        records = [RawRecord(w.request_id.encode(), w.to_avro(), Source("raw", 0, i)) for i, w in enumerate(webhooks)]
        normalized = plan_normalize(records, 1, at=now_ms())
        self._signals(normalized.signals, now)
        events = [event for bundle in normalized.bundles.values() for event in bundle]
        tracked = plan_track(events, self.table.get, self.policy.window_ms, at=now_ms())
        self.table.update(tracked.writes)
        self._signals(tracked.signals, now)

    def tick(self, now: int) -> None:
        """The channels' timer."""
        self._signals(
            [(key, ChannelSignals(s.provider, s.channel, tick=True).encode()) for key, s in self.channels.items()], now
        )

    def _signals(self, signals: list[Keyed], now: int) -> None:
        for key, value in signals:
            provider, channel, view = decode_signals(value)
            state = self.channels.setdefault(key, ChannelState(provider, channel))
            out = apply_signals(state, view, self.policy, now)
            self.alerts += out.alerts
            self.metrics += out.metrics
            self.dropped_late += out.dropped_late
            self.late_transitions += out.late_transitions

    def kinds(self) -> Counter[str]:
        """Alerts published, by kind."""
        return Counter(str(a["kind"]) for a in self.alerts)

    def counted(self, scope: str, campaign: str | None = None) -> Counter[str]:
        """Transitions in the latest revision of every published window of a scope."""
        latest: dict[str, dict[str, object]] = {}
        for m in self.metrics:
            if m["scope"] == scope and m["campaign"] == campaign:
                seen = latest.get(str(m["metric_id"]))
                if seen is None or int(str(m["revision"])) >= int(str(seen["revision"])):
                    latest[str(m["metric_id"])] = m
        total: Counter[str] = Counter()
        for m in latest.values():
            transitions = m["transitions"]
            assert isinstance(transitions, dict)
            total.update({k: v for k, v in transitions.items() if v})
        return total
