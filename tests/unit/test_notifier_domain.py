"""The notifier's pure logic: routing, grouping, dedup, offsets, Alertmanager mapping, rendering."""

from __future__ import annotations

import hashlib
import hmac
import random
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from notifier import parking
from notifier.alertmanager_mapping import labels, postable_alerts
from notifier.alerts import Alert, tenant_of
from notifier.dedup import Delivered, ledger_key, parse_ledger_key
from notifier.grouping import Grouper, Notification
from notifier.offsets import OffsetTracker
from notifier.rendering import text, webhook_body
from notifier.routing import sinks_for
from notifier.settings import NotifySettings, Route
from notifier.sinks.webhook import signature
from schemas.codec import codec


def alert(
    alert_id: str = "a1",
    kind: str = "message_failed",
    *,
    channel: str = "sales",
    provider: str = "meta",
    severity: str = "warning",
    state: str = "firing",
    at: int = 1_700_000_000_000,
    message_key: str | None = "meta:wamid.1",
    tenant: str | None = None,
) -> Alert:
    return Alert(
        alert_id=alert_id,
        alert_key=f"{kind}:{message_key or channel}",
        kind=kind,
        severity=severity,
        state=state,
        detail=f"{message_key or channel} {kind}",
        occurred_at=at,
        provider=provider,
        channel=channel,
        message_key=message_key,
        tenant=tenant,
    )


# --- alerts -------------------------------------------------------------------------------------


def test_alert_from_a_decoded_record() -> None:
    record = {
        "alert_id": "x",
        "alert_key": "message_failed:meta:w1",
        "kind": "message_failed",
        "severity": "warning",
        "state": "firing",
        "provider": "meta",
        "channel": "sales",
        "campaign": None,
        "message_key": "meta:w1",
        "error_code": "131026",
        "error_title": None,
        "detail": "meta:w1 message failed",
        "occurred_at": 5,
        "window_start": None,
        "window_end": None,
        "count": 1,
        "value": None,
        "threshold": None,
    }
    decoded = codec("alert").decode(codec("alert").encode(record))
    parsed = Alert.from_record(decoded, tenant="acme")
    assert parsed.alert_id == "x" and parsed.error_code == "131026" and parsed.tenant == "acme"
    assert parsed.per_message and not parsed.resolves


def test_tenant_of_a_channel() -> None:
    tenants = {"acme": frozenset({"sales"}), "globex": frozenset({"support"})}
    assert tenant_of("support", tenants) == "globex"
    assert tenant_of("other", tenants) is None
    assert tenant_of(None, tenants) is None


# --- routing ------------------------------------------------------------------------------------


def test_first_matching_route_decides_and_default_catches_the_rest() -> None:
    routes = (
        Route(kinds=frozenset({"channel_logout"}), sinks=("alertmanager", "email")),
        Route(channels=frozenset({"sales"}), min_severity="warning", sinks=("webhook",)),
    )
    assert sinks_for(alert(kind="channel_logout", severity="critical"), routes, ("webhook",)) == (
        "alertmanager",
        "email",
    )
    assert sinks_for(alert(channel="sales"), routes, ("alertmanager",)) == ("webhook",)
    assert sinks_for(alert(channel="sales", severity="info"), routes, ("alertmanager",)) == ("alertmanager",)
    assert sinks_for(alert(channel="other"), routes, ()) == ()


def test_continue_lets_later_routes_add_sinks() -> None:
    routes = (
        Route.model_validate({"tenants": ["acme"], "sinks": ["webhook"], "continue": True}),
        Route(providers=frozenset({"meta"}), severities=frozenset({"warning"}), sinks=("email", "webhook")),
    )
    assert sinks_for(alert(tenant="acme"), routes, ("alertmanager",)) == ("webhook", "email")
    assert sinks_for(alert(tenant="acme", provider="twilio"), routes, ("alertmanager",)) == ("webhook",)


def test_route_with_continue_from_yaml_alias() -> None:
    route = Route.model_validate({"sinks": ["webhook"], "continue": True})
    assert route.keep_going


# --- grouping -----------------------------------------------------------------------------------


def test_a_burst_on_one_channel_is_one_notification_per_interval() -> None:
    grouper = Grouper(interval_ms=10_000)
    for n in range(200):
        assert grouper.add("webhook", alert(f"id{n}", message_key=f"meta:w{n}"), ("p", n), now_ms=1000 + n) is None
    assert grouper.due(now_ms=10_999) == []
    [notification] = grouper.due(now_ms=11_000)
    assert len(notification.alerts) == 200 and notification.counts == {"message_failed": 200}
    assert notification.grouped and len(notification.refs) == 200
    assert grouper.next_due_ms() is None


def test_channel_alerts_stand_alone_and_groups_are_per_channel_and_sink() -> None:
    grouper = Grouper(interval_ms=1000)
    single = grouper.add("webhook", alert("l1", "channel_logout", message_key=None), "r0", now_ms=0)
    assert single is not None and single.alerts[0].alert_id == "l1" and not single.grouped
    grouper.add("webhook", alert("m1", channel="a"), "r1", now_ms=0)
    grouper.add("webhook", alert("m2", channel="b"), "r2", now_ms=0)
    grouper.add("email", alert("m1", channel="a"), "r1", now_ms=0)
    due = grouper.due(now_ms=1000)
    assert sorted((n.sink, n.key) for n in due) == [
        ("email", "group:meta:a"),
        ("webhook", "group:meta:a"),
        ("webhook", "group:meta:b"),
    ]


alert_ids = st.lists(st.sampled_from([f"id{n}" for n in range(12)]), min_size=1, max_size=40)


@given(ids=alert_ids, data=st.data())
def test_grouping_ignores_arrival_order_and_repeats(ids: list[str], data: st.DataObject) -> None:
    """Whatever order and however often the alerts arrive within an interval, the notification
    carries each alert once, in the same order, with the same counts and examples."""

    def notify(order: list[str]) -> Notification:
        grouper = Grouper(interval_ms=100)
        for n, alert_id in enumerate(order):
            at = int(alert_id.removeprefix("id")) * 7 % 5  # ties on event time too
            grouper.add("webhook", alert(alert_id, at=at, message_key=f"meta:{alert_id}"), n, now_ms=0)
        [notification] = grouper.due(now_ms=100)
        return notification

    shuffled = data.draw(st.permutations(ids))
    first, second = notify(ids), notify([*shuffled, *shuffled[: len(shuffled) // 2]])
    assert first.alerts == second.alerts
    assert len({a.alert_id for a in first.alerts}) == len(first.alerts) == len(set(ids))
    assert first.counts == second.counts and first.notification_id == second.notification_id
    assert text(first, 3) == text(second, 3)


# --- dedup --------------------------------------------------------------------------------------


def test_delivered_ids_are_dropped_per_sink() -> None:
    delivered = Delivered()
    delivered.add("webhook", ["a", "b"])
    both = Notification(sink="webhook", key="group:x", alerts=(alert("a"), alert("c")), refs=(1, 2))
    fresh = delivered.fresh(both)
    assert fresh is not None and [a.alert_id for a in fresh.alerts] == ["c"] and fresh.refs == (1, 2)
    assert delivered.fresh(Notification(sink="webhook", key="k", alerts=(alert("a"),))) is None
    assert delivered.fresh(Notification(sink="email", key="k", alerts=(alert("a"),))) is not None
    assert delivered.knows("webhook", "b") and not delivered.knows("email", "b")


@given(st.lists(st.tuples(st.sampled_from(["webhook", "email"]), st.text(min_size=1)), max_size=30))
def test_ledger_keys_round_trip_and_dedup_is_order_free(entries: list[tuple[str, str]]) -> None:
    forwards, backwards = Delivered(), Delivered()
    for sink, alert_id in entries:
        assert parse_ledger_key(ledger_key(sink, alert_id)) == (sink, alert_id)
        forwards.add(sink, [alert_id])
    for sink, alert_id in reversed(entries * 2):
        backwards.add(sink, [alert_id])
    assert len(forwards) == len(backwards) == len(set(entries))


def test_a_key_that_is_not_a_ledger_key() -> None:
    assert parse_ledger_key("nothing") is None
    assert parse_ledger_key("|x") is None


# --- offsets ------------------------------------------------------------------------------------


def test_commit_stops_below_the_oldest_unsettled_record() -> None:
    tracker = OffsetTracker()
    tracker.seen("p0", 0, 0)
    tracker.seen("p0", 1, 2)
    tracker.seen("p0", 2, 1)
    tracker.seen("p0", 3, 0)
    assert tracker.committable() == {"p0": 1}
    tracker.committed({"p0": 1})
    tracker.settle("p0", 2)
    tracker.settle("p0", 1)
    assert tracker.committable() == {}
    tracker.settle("p0", 1)
    assert tracker.committable() == {"p0": 4} and tracker.waiting() == 0
    tracker.committed({"p0": 4})
    assert tracker.committable() == {}


@given(st.lists(st.integers(min_value=0, max_value=3), min_size=1, max_size=30), st.randoms())
def test_everything_settled_in_any_order_commits_to_the_end(holds: list[int], rnd: random.Random) -> None:
    tracker = OffsetTracker()
    pending = []
    for offset, count in enumerate(holds):
        tracker.seen("p", offset, count)
        pending.extend([offset] * count)
    rnd.shuffle(pending)
    for offset in list(pending):
        committable = tracker.committable().get("p")
        assert committable is None or committable <= min(pending)
        tracker.settle("p", offset)
        pending.remove(offset)
    assert tracker.committable() == {"p": len(holds)}


# --- Alertmanager mapping -----------------------------------------------------------------------


def test_labels_name_the_condition_not_the_message() -> None:
    found = labels(alert(tenant="acme"))
    assert found == {
        "alertname": "statusflow_message_failed",
        "kind": "message_failed",
        "severity": "warning",
        "provider": "meta",
        "channel": "sales",
        "tenant": "acme",
    }


def test_resolutions_repeat_the_firing_labels() -> None:
    logout = alert("l", "channel_logout", severity="critical", message_key=None)
    back = alert("r", "channel_resolved", severity="info", message_key=None)
    assert labels(back) == labels(logout)
    spike = alert("s", "failure_rate_spike", severity="critical", message_key=None)
    cleared = alert("c", "failure_rate_spike", severity="info", state="resolved", message_key=None)
    assert labels(cleared) == labels(spike)


def test_postable_alerts_times() -> None:
    now = 1_700_000_100_000
    firing = Notification(sink="alertmanager", key="k", alerts=(alert("l", "channel_logout", message_key=None),))
    [posted] = postable_alerts(firing, now, message_ttl_ms=60_000, condition_ttl_ms=3_600_000, examples=3)
    assert posted["startsAt"] == "2023-11-14T22:13:20Z" and posted["endsAt"] == "2023-11-14T23:15:00Z"
    resolved = Notification(sink="alertmanager", key="k", alerts=(alert("r", "channel_resolved", message_key=None),))
    [closing] = postable_alerts(resolved, now, message_ttl_ms=60_000, condition_ttl_ms=3_600_000, examples=3)
    assert closing["endsAt"] == "2023-11-14T22:15:00Z" and closing["labels"]["kind"] == "channel_logout"


def test_a_group_is_one_alertmanager_alert_per_label_set_with_counts() -> None:
    alerts = tuple(alert(f"id{n}", message_key=f"meta:w{n}", at=n) for n in range(7))
    group = Notification(sink="alertmanager", key="group:meta:sales", alerts=alerts)
    [posted] = postable_alerts(group, 10_000, message_ttl_ms=1000, condition_ttl_ms=1000, examples=2)
    assert posted["annotations"]["count"] == "7"
    assert posted["annotations"]["examples"].splitlines() == ["meta:w0 message_failed", "meta:w1 message_failed"]


# --- rendering, signature, parking --------------------------------------------------------------


def test_webhook_body_has_slack_text_and_the_alerts() -> None:
    alerts = tuple(alert(f"id{n}", message_key=f"meta:w{n}", at=n) for n in range(4))
    body = webhook_body(Notification(sink="webhook", key="group:meta:sales", alerts=alerts), examples=2)
    assert body["text"].startswith(":warning: *4 message alerts on meta/sales: 4 message_failed*")
    assert "meta:w0" in body["text"] and "meta:w3" not in body["text"] and "and 2 more" in body["text"]
    assert body["notification"]["total"] == 4 and len(body["alerts"]) == 4


def test_signature_is_hmac_sha256_of_the_body() -> None:
    expected = hmac.new(b"s3cret", b"{}", hashlib.sha256).hexdigest()
    assert signature(b"s3cret", b"{}") == f"sha256={expected}"


def test_parking_round_trip() -> None:
    notification = Notification(sink="email", key="group:meta:sales", alerts=(alert("a"), alert("b")), refs=(1,))
    back = parking.decode(parking.encode(notification, 5, "down"))
    assert back.alerts == notification.alerts and back.sink == "email" and back.refs == ()
    with pytest.raises(ValueError, match="parked"):
        parking.decode(b"{}")
    with pytest.raises(ValueError, match="no sink or no alerts"):
        parking.decode(b'{"sink": "pager", "key": "k", "alerts": []}')


# --- settings -----------------------------------------------------------------------------------


def test_one_variable_configures_a_sink_and_the_default_route(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STATUSFLOW_NOTIFY_WEBHOOK_URL", "http://127.0.0.1:1/hook")
    monkeypatch.setenv("STATUSFLOW_TOPIC_ALERTS", "x.alerts")
    settings = NotifySettings()
    assert settings.sink_names() == ("webhook",) and settings.default_route() == ("webhook",)
    assert settings.parked() == "x.alerts.parked" and settings.delivered() == "x.alerts.delivered"


def test_notify_file_routes_and_unknown_sinks(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    path = tmp_path / "notify.yaml"
    path.write_text(
        "alertmanager_url: http://am:9093\n"
        "tenants: {acme: [sales]}\n"
        "routes:\n"
        "  - {kinds: [channel_logout], sinks: [alertmanager], continue: true}\n"
    )
    monkeypatch.setenv("STATUSFLOW_NOTIFY_FILE", str(path))
    monkeypatch.setenv("STATUSFLOW_NOTIFY_WEBHOOK_URL", "http://127.0.0.1:1/hook")
    settings = NotifySettings()
    assert settings.sink_names() == ("alertmanager", "webhook")
    assert settings.routes[0].keep_going and settings.tenants == {"acme": frozenset({"sales"})}
    path.write_text("routes:\n  - {sinks: [email]}\n")
    with pytest.raises(ValueError, match="not configured"):
        NotifySettings()


def test_the_compose_environment_parses_with_no_sink(monkeypatch: pytest.MonkeyPatch) -> None:
    import yaml

    compose = yaml.safe_load((Path(__file__).resolve().parents[2] / "docker-compose.yml").read_text())
    for name, value in compose["services"]["notifier"]["environment"].items():
        monkeypatch.setenv(name, value.replace("${STATUSFLOW_NOTIFY_WEBHOOK_URL:-}", "").split("${")[0])
    settings = NotifySettings()
    assert settings.sink_names() == () and settings.port == 8095 and settings.kafka.bootstrap_servers == "kafka:9092"


def test_make_run_starts_the_notifier_only_when_a_sink_is_configured() -> None:
    from devkit.run_local import wants_notifier

    assert not wants_notifier({"STATUSFLOW_NOTIFY_WEBHOOK_URL": ""})
    assert wants_notifier({"STATUSFLOW_NOTIFY_WEBHOOK_URL": "http://127.0.0.1:9/hook"})
    assert wants_notifier({"STATUSFLOW_NOTIFY_ALERTMANAGER_URL": "http://127.0.0.1:9093"})


def test_statusflow_notify_is_a_subcommand() -> None:
    from statusflow_cli.main import build_parser

    args = build_parser().parse_args(["notify", "--webhook-url", "http://127.0.0.1:9/hook", "--port", "0"])
    assert args.func.__name__ == "cmd_notify" and args.port == 0
