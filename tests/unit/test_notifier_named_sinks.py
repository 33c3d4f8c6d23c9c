"""Several named sinks of each kind: the notify file (YAML or TOML), the single-sink variables next to
it, routes that name sinks, and one lane per named sink with its own retries and parking."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import cast

import pytest
from aiokafka import AIOKafkaProducer
from pydantic import ValidationError

from notifier import parking
from notifier.alerts import Alert
from notifier.dedup import Delivered
from notifier.delivery import Lane, Parker
from notifier.grouping import Notification
from notifier.ledger import Ledger
from notifier.metrics import NotifierMetrics
from notifier.routing import sinks_for
from notifier.service import build_sinks
from notifier.settings import EmailSinkConfig, NotifySettings, RetryPolicy, WebhookSinkConfig
from notifier.sinks.base import SinkError

YAML = """
sinks:
  webhook:
    - {name: ops-slack, url: "http://127.0.0.1:9/ops", secret: s3cret}
    - {name: acme-hook, url: "http://127.0.0.1:9/acme", retry_attempts: 2, retry_base_s: 0.1}
  email:
    - {name: support-mail, host: smtp.example.com, port: 465, tls: true, from: alerts@example.com,
       to: "support@example.com, oncall@example.com"}
tenants: {acme: [acme-sales]}
routes:
  - {tenants: [acme], sinks: [acme-hook, support-mail]}
  - {kinds: [channel_logout], sinks: [ops-slack, support-mail]}
default_sinks: [ops-slack]
"""

TOML = """
default_sinks = ["ops-slack"]

[tenants]
acme = ["acme-sales"]

[[sinks.webhook]]
name = "ops-slack"
url = "http://127.0.0.1:9/ops"
secret = "s3cret"

[[sinks.webhook]]
name = "acme-hook"
url = "http://127.0.0.1:9/acme"
retry_attempts = 2
retry_base_s = 0.1

[[sinks.email]]
name = "support-mail"
host = "smtp.example.com"
port = 465
tls = true
from = "alerts@example.com"
to = ["support@example.com", "oncall@example.com"]

[[routes]]
tenants = ["acme"]
sinks = ["acme-hook", "support-mail"]

[[routes]]
kinds = ["channel_logout"]
sinks = ["ops-slack", "support-mail"]
"""


def alert(alert_id: str, kind: str = "message_failed", channel: str = "sales", tenant: str | None = None) -> Alert:
    return Alert(
        alert_id=alert_id,
        alert_key=f"{kind}:{channel}",
        kind=kind,
        severity="warning",
        state="firing",
        detail=f"{channel} {kind}",
        occurred_at=1_700_000_000_000,
        provider="meta",
        channel=channel,
        tenant=tenant,
    )


def settings_from(monkeypatch: pytest.MonkeyPatch, path: Path, text: str, **env: str) -> NotifySettings:
    path.write_text(text)
    monkeypatch.setenv("STATUSFLOW_NOTIFY_FILE", str(path))
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return NotifySettings()


@pytest.mark.parametrize(("suffix", "text"), [(".yaml", YAML), (".toml", TOML)])
def test_the_notify_file_names_several_sinks_of_a_kind(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, suffix: str, text: str
) -> None:
    settings = settings_from(monkeypatch, tmp_path / f"notify{suffix}", text)
    assert settings.sink_names() == ("ops-slack", "acme-hook", "support-mail")
    ops, acme, mail = settings.sink_configs()
    assert isinstance(ops, WebhookSinkConfig) and ops.secret is not None and ops.secret.get_secret_value() == "s3cret"
    assert isinstance(mail, EmailSinkConfig)
    assert (mail.sender, mail.to, mail.port, mail.tls) == (
        "alerts@example.com",
        ("support@example.com", "oncall@example.com"),
        465,
        True,
    )
    # Each sink its own retries; what a sink does not set is the global setting.
    assert settings.retry_policy(acme) == RetryPolicy(attempts=2, base_s=0.1, max_s=settings.retry_max_s)
    assert settings.retry_policy(ops) == RetryPolicy(attempts=4, base_s=0.5, max_s=8.0)
    routes, default = settings.routes, settings.default_route()
    assert sinks_for(alert("a", tenant="acme"), routes, default) == ("acme-hook", "support-mail")
    assert sinks_for(alert("b", "channel_logout"), routes, default) == ("ops-slack", "support-mail")
    assert sinks_for(alert("c"), routes, default) == ("ops-slack",)


def test_the_single_sink_variables_still_work_beside_named_sinks(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    text = "sinks:\n  webhook:\n    - {name: ops-slack, url: 'http://127.0.0.1:9/ops'}\n"
    settings = settings_from(
        monkeypatch,
        tmp_path / "notify.yaml",
        text,
        STATUSFLOW_NOTIFY_WEBHOOK_URL="http://127.0.0.1:9/hook",
        STATUSFLOW_NOTIFY_ALERTMANAGER_URL="http://127.0.0.1:9093",
    )
    # Named after their kind, as they always were: the ledger and parked work still match them.
    assert settings.sink_names() == ("alertmanager", "webhook", "ops-slack")
    assert settings.default_route() == ("alertmanager", "webhook", "ops-slack")


def test_the_single_sink_file_form_still_works(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    text = (
        "webhook_url: http://127.0.0.1:9/hook\n"
        "smtp_host: smtp.example.com\n"
        "email_to: a@example.com, b@example.com\n"
        "routes:\n  - {kinds: [channel_logout], sinks: [email]}\n"
    )
    settings = settings_from(monkeypatch, tmp_path / "notify.yaml", text)
    assert settings.sink_names() == ("webhook", "email")
    email = settings.sink_configs()[1]
    assert isinstance(email, EmailSinkConfig) and email.to == ("a@example.com", "b@example.com")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "sinks: {webhook: [{name: ops-slack, url: 'http://h/1'}]}\n"
            "routes:\n  - {name: acme, tenants: [acme], sinks: [ops-slack, support-mail]}\n",
            re.escape("route acme names sink 'support-mail', which is not configured (configured sinks: ops-slack)"),
        ),
        (
            "sinks: {webhook: [{name: ops-slack, url: 'http://h/1'}]}\ndefault_sinks: [pager]\n",
            "default_sinks names sink 'pager', which is not configured",
        ),
        (
            "sinks: {webhook: [{name: a, url: 'http://h/1'}], email: [{name: a, host: h, to: x@example.com}]}\n",
            r"sink names must be unique, \['a'\] repeat",
        ),
        ("webhook_url: http://h/1\nsinks: {webhook: [{name: webhook, url: 'http://h/2'}]}\n", "unique"),
        ("sinks: {webhook: [{name: 'ops|slack', url: 'http://h/1'}]}\n", "pattern"),
        ("sinks: {webhook: [{name: ops, url: 'http://h/1', colour: red}]}\n", "colour"),
        ("sinks: {pager: [{name: ops}]}\n", "pager"),
        ("sinks: {email: [{name: mail, host: h}]}\n", "to"),
    ],
)
def test_a_sink_config_error_is_refused_at_start(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, text: str, message: str
) -> None:
    with pytest.raises(ValidationError, match=message):
        settings_from(monkeypatch, tmp_path / "notify.yaml", text)


async def test_each_named_sink_is_its_own_sink() -> None:
    settings = NotifySettings(
        sinks={
            "webhook": [{"name": "ops-slack", "url": "http://127.0.0.1:9/a"}, {"name": "b", "url": "http://h/b"}],
            "email": [{"name": "mail", "host": "127.0.0.1", "to": "x@example.com"}],
        }
    )
    sinks = build_sinks(settings)
    try:
        assert {name: sink.name for name, sink in sinks.items()} == {"ops-slack": "ops-slack", "b": "b", "mail": "mail"}
    finally:
        for sink in sinks.values():
            await sink.close()


# --- lanes --------------------------------------------------------------------------------------


class _Producer:
    """Records what the lanes write: the ledger and parking records (unit test: no broker)."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes | None, bytes]] = []

    async def send(self, topic: str, *, key: bytes | None = None, value: bytes) -> asyncio.Future[None]:
        self.sent.append((topic, key, value))
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        done.set_result(None)
        return done

    async def send_and_wait(self, topic: str, *, key: bytes | None = None, value: bytes) -> None:
        self.sent.append((topic, key, value))


class _Sink:
    def __init__(self, name: str, *, up: bool) -> None:
        self.name = name
        self.up = up
        self.attempts = 0
        self.told: list[Notification] = []

    async def deliver(self, notification: Notification) -> None:
        self.attempts += 1
        if not self.up:
            raise SinkError(f"{self.name} answered 503")
        self.told.append(notification)

    async def close(self) -> None:
        pass


async def test_a_down_sink_parks_after_its_own_retries_while_the_other_is_told() -> None:
    producer = _Producer()
    kafka = cast(AIOKafkaProducer, producer)
    ledger = Ledger(kafka, "ledger", Delivered())
    parker = Parker(kafka, "parked")
    metrics = NotifierMetrics.create()
    waits: dict[str, list[float]] = {"down": [], "up": []}
    settled: list[tuple[str, str]] = []

    def lane(sink: _Sink, retry: RetryPolicy) -> Lane:
        async def wait(seconds: float) -> None:
            waits[sink.name].append(seconds)

        return Lane(
            sink,
            retry=retry,
            ledger=ledger,
            parker=parker,
            metrics=metrics,
            settled=lambda n: settled.append((n.sink, n.alerts[0].alert_id)),
            sleep=wait,
        )

    down, up = _Sink("down", up=False), _Sink("up", up=True)
    lanes = [
        lane(down, RetryPolicy(attempts=3, base_s=1, max_s=1.5)),
        lane(up, RetryPolicy(attempts=5, base_s=1, max_s=9)),
    ]
    tasks = [asyncio.create_task(each.run()) for each in lanes]
    try:
        for sink_lane in lanes:
            for alert_id in ("x", "y"):
                notification = Notification(
                    sink=sink_lane.sink.name, key=f"alert:{alert_id}", alerts=(alert(alert_id),)
                )
                sink_lane.queue.put_nowait(notification)
        await asyncio.gather(*(each.queue.join() for each in lanes))
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    assert [n.alerts[0].alert_id for n in up.told] == ["x", "y"] and waits["up"] == []
    # Three attempts with the down sink's own backoff, then parked; the next one at once.
    assert down.attempts == 3 and waits["down"] == [1, 1.5]
    assert lanes[0].down and not lanes[1].down
    parked = [parking.decode(value) for topic, _, value in producer.sent if topic == "parked"]
    assert [(n.sink, n.alerts[0].alert_id) for n in parked] == [("down", "x"), ("down", "y")]
    assert {key for topic, key, _ in producer.sent if topic == "parked"} == {b"down"}
    assert ledger.delivered.knows("up", "x") and not ledger.delivered.knows("down", "x")
    assert sorted(settled) == [("down", "x"), ("down", "y"), ("up", "x"), ("up", "y")]


def test_sink_configs_need_what_their_kind_needs() -> None:
    with pytest.raises(ValidationError):
        WebhookSinkConfig.model_validate({"name": "w"})
    config = EmailSinkConfig.model_validate({"name": "m", "host": "h", "to": "a@x, b@x", "from": "me@x"})
    assert config.to == ("a@x", "b@x") and config.sender == "me@x"
    assert config.kind == "email"
