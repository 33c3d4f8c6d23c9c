"""Channel events of issue 16 in the channel stage: a `connected` event resolves a logout and
never raises one; a number-not-found report without a message id raises the channel's
number_not_found alert (limited per window like per-message alerts)."""

from __future__ import annotations

import orjson

from schemas.envelope import RawWebhook
from streams.domain.channel import ChannelSignalsView, ChannelState, Policy, apply_signals, tick
from tests.channel_stage import ChannelStage

POLICY = Policy(window_ms=60_000, grace_ms=5_000, lateness_ms=120_000, idle_close_ms=10_000, alert_limit_per_window=3)
NOW = 1_750_030_200_000


def _signals(*events: tuple[str, int, str | None]) -> ChannelSignalsView:
    return ChannelSignalsView(channel_events=list(events))


def test_connected_without_a_logout_raises_nothing() -> None:
    state = ChannelState("wpp", "loja")
    out = apply_signals(state, _signals(("connected", 1_000, "Conexão: connected")), POLICY, NOW)
    assert out.alerts == [] and state.logged_out_at is None


def test_logout_then_connected_resolves_the_logout() -> None:
    state = ChannelState("wpp", "loja")
    out = apply_signals(state, _signals(("logout", 1_000, "Conexão"), ("connected", 2_000, "open")), POLICY, NOW)
    assert [a["kind"] for a in out.alerts] == ["channel_logout", "channel_resolved"]
    assert state.logged_out_at is None


def test_a_connected_event_that_arrived_before_an_older_logout_resolves_it_at_once() -> None:
    state = ChannelState("wpp", "loja")
    first = apply_signals(state, _signals(("connected", 2_000, "open")), POLICY, NOW)
    then = apply_signals(state, _signals(("logout", 1_000, "Conexão: disconnected")), POLICY, NOW)
    assert first.alerts == []
    assert [a["kind"] for a in then.alerts] == ["channel_logout", "channel_resolved"]
    assert state.logged_out_at is None
    # A logout newer than everything heard stays open.
    later = apply_signals(state, _signals(("logout", 3_000, "logout")), POLICY, NOW)
    assert [a["kind"] for a in later.alerts] == ["channel_logout"] and state.logged_out_at == 3_000


def test_number_not_found_without_a_message_is_the_channels_alert() -> None:
    state = ChannelState("wpp", "loja")
    out = apply_signals(state, _signals(("number_not_found", 1_000, "invalid number: 551*******21")), POLICY, NOW)
    (alert,) = out.alerts
    assert (alert["kind"], alert["severity"], alert["provider"], alert["channel"]) == (
        "number_not_found",
        "warning",
        "wpp",
        "loja",
    )
    assert alert["message_key"] is None
    assert alert["alert_key"] == "number_not_found:wpp:loja"
    assert "invalid number: 551*******21" in str(alert["detail"])
    # The same report again (a re-delivery) is the same alert.
    again = apply_signals(
        ChannelState("wpp", "loja"), _signals(("number_not_found", 1_000, "invalid number: 551*******21")), POLICY, NOW
    )
    assert again.alerts[0]["alert_id"] == alert["alert_id"]


def test_number_not_found_alerts_are_limited_per_window_and_rolled_up() -> None:
    state = ChannelState("wpp", "loja")
    events = [("number_not_found", 1_000 + i, f"invalid number: {i}") for i in range(5)]
    out = apply_signals(state, _signals(*events), POLICY, NOW)
    assert len(out.alerts) == POLICY.alert_limit_per_window
    rolled = tick(state, POLICY, NOW + POLICY.window_ms).alerts
    (rollup,) = [a for a in rolled if a["kind"] == "rollup"]
    assert rollup["count"] == 2


def _wpp(request_id: str, body: dict[str, object], received_at: int) -> RawWebhook:
    return RawWebhook(
        request_id=request_id,
        provider="wpp",
        channel="loja",
        received_at=received_at,
        content_type="application/json",
        url="http://127.0.0.1/webhooks/wpp/loja",
        body=orjson.dumps(body),
    )


def test_through_the_stages_a_connected_event_resolves_and_not_found_alerts() -> None:
    stage = ChannelStage(POLICY)
    at = 1_750_030_000
    stage.feed(
        [
            _wpp("r1", {"event": "Conexão", "state": "disconnected", "timestamp": at}, at * 1000),
            _wpp("r2", {"event": "Conexão", "state": "connected", "timestamp": at + 5}, (at + 5) * 1000),
            _wpp("r3", {"event": "Conexão", "state": "connected", "timestamp": at + 6}, (at + 6) * 1000),
            _wpp("r4", {"status": "Número inválido", "phone": "5511987654321", "timestamp": at + 7}, (at + 7) * 1000),
        ],
        now=(at + 10) * 1000,
    )
    assert stage.kinds() == {"channel_logout": 1, "channel_resolved": 1, "number_not_found": 1}
    (not_found,) = [a for a in stage.alerts if a["kind"] == "number_not_found"]
    assert "5511987654321" not in str(not_found["detail"])  # masked like every recipient
