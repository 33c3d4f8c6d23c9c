"""The notifier against the real broker, a real Alertmanager, a real SMTP server and an aiohttp
webhook receiver: grouping, dedup across restarts, a sink that is down, resolution."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import hashlib
import hmac
import shutil
import subprocess
import time
import urllib.request
from collections.abc import AsyncIterator, Iterator
from email import message_from_bytes
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from aiokafka import AIOKafkaProducer
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import Envelope, Session

from devkit.kafka_local import free_port
from notifier.service import own_topics, serve
from notifier.settings import NotifySettings
from schemas.codec import codec
from schemas.settings import KafkaSettings
from schemas.topics import ensure_topics
from tests.integration.helpers import consume, wait_until

ALERTMANAGER = "/usr/bin/prometheus-alertmanager"


def alert_record(alert_id: str, kind: str = "message_failed", **fields: Any) -> dict[str, Any]:
    message_key = fields.pop("message_key", f"meta:wamid.{alert_id}")
    record: dict[str, Any] = {
        "alert_id": alert_id,
        "alert_key": f"{kind}:{message_key}",
        "kind": kind,
        "severity": "warning",
        "state": "firing",
        "provider": "meta",
        "channel": "sales",
        "campaign": None,
        "message_key": message_key,
        "error_code": "131026",
        "error_title": None,
        "detail": f"{message_key} {kind.replace('_', ' ')} (code 131026)",
        "occurred_at": 1_700_000_000_000,
        "window_start": None,
        "window_end": None,
        "count": 1,
        "value": None,
        "threshold": None,
    }
    record.update(fields)
    return record


async def produce(settings: KafkaSettings, records: list[dict[str, Any]]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=settings.bootstrap_servers, acks="all")
    await producer.start()
    try:
        for record in records:
            await producer.send(
                settings.topics.alerts, key=record["alert_key"].encode(), value=codec("alert").encode(record)
            )
        await producer.flush()
    finally:
        await producer.stop()


@dataclasses.dataclass
class Hook:
    """An HTTP webhook receiver that can be switched off (503)."""

    received: list[tuple[dict[str, Any], dict[str, str], bytes]] = dataclasses.field(default_factory=list)
    up: bool = True
    url: str = ""

    def bodies(self) -> list[dict[str, Any]]:
        return [body for body, _, _ in self.received]

    def alert_ids(self) -> list[str]:
        return [a["alert_id"] for body in self.bodies() for a in body["alerts"]]


@pytest.fixture
async def hook() -> AsyncIterator[Hook]:
    async with hook_server() as state:
        yield state


@pytest.fixture
async def other_hook() -> AsyncIterator[Hook]:
    async with hook_server() as state:
        yield state


@contextlib.asynccontextmanager
async def hook_server() -> AsyncIterator[Hook]:
    """A real HTTP server on a free loopback port, answering 204 while up and 503 while down."""
    state = Hook()

    async def receive(request: web.Request) -> web.Response:
        if not state.up:
            return web.Response(status=503)
        raw = await request.read()
        state.received.append((orjson.loads(raw), dict(request.headers), raw))
        return web.Response(status=204)

    app = web.Application()
    app.router.add_post("/hook", receive)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    state.url = str(server.make_url("/hook"))
    try:
        yield state
    finally:
        await server.close()


@contextlib.asynccontextmanager
async def running(settings: NotifySettings) -> AsyncIterator[None]:
    """The notifier in this process until the block ends (SIGTERM-like stop)."""
    stop = asyncio.Event()
    task = asyncio.create_task(serve(settings, stop))
    url = f"http://{settings.host}:{settings.port}/healthz"

    async def ready() -> bool | None:
        if task.done():
            task.result()
        with contextlib.suppress(aiohttp.ClientError):
            async with aiohttp.ClientSession() as http, http.get(url) as response:
                return True if response.status == 200 else None
        return None

    try:
        await wait_until(ready, within=60, what="the notifier to be ready")
        yield
    finally:
        stop.set()
        await asyncio.wait_for(task, timeout=30)


def notify_settings(kafka_settings: KafkaSettings, unique_id: str, **fields: Any) -> NotifySettings:
    base: dict[str, Any] = {
        "kafka": kafka_settings,
        "group_id": f"notifier-{unique_id}",
        "group_interval_s": 1.0,
        "retry_attempts": 2,
        "retry_base_s": 0.1,
        "retry_max_s": 0.2,
        "redrive_interval_s": 0.5,
        "port": free_port(),
    }
    return NotifySettings(**{**base, **fields})


async def test_repeats_are_told_once_bursts_are_grouped_and_a_restart_tells_nothing_again(
    kafka_settings: KafkaSettings, unique_id: str, hook: Hook
) -> None:
    settings = notify_settings(kafka_settings, unique_id, webhook_url=hook.url, webhook_secret="s3cret")
    async with running(settings):
        await produce(kafka_settings, [alert_record("one")] * 3)
        await wait_until(lambda: _some(hook.received), within=15, what="the first notification")
        burst = [alert_record(f"b{n}", channel="promo", message_key=f"meta:wamid.b{n}") for n in range(200)]
        await produce(kafka_settings, burst)
        await wait_until(lambda: _some(len(hook.alert_ids()) >= 201), within=30, what="the burst")
    first, headers, raw = hook.received[0]
    assert first["alerts"][0]["message_key"] == "meta:wamid.one" and "sales" in first["text"]
    expected = "sha256=" + hmac.new(b"s3cret", raw, hashlib.sha256).hexdigest()
    assert headers["X-Statusflow-Signature"] == expected
    ids = hook.alert_ids()
    assert sorted(ids) == sorted({"one", *(f"b{n}" for n in range(200))})  # each exactly once
    promo = [body for body in hook.bodies() if body["alerts"][0]["channel"] == "promo"]
    assert 1 <= len(promo) <= 5 and all(body["notification"]["grouped"] for body in promo)

    # A restart re-reads nothing it committed, and what is produced again is in the ledger.
    told = len(hook.received)
    async with running(settings):
        await produce(kafka_settings, [alert_record("one"), alert_record("two")])
        await wait_until(lambda: _some("two" in hook.alert_ids()), within=15, what="the new alert")
    assert len(hook.received) == told + 1 and hook.alert_ids().count("one") == 1


async def test_a_sink_that_is_down_gets_everything_when_it_returns_and_nothing_twice(
    kafka_settings: KafkaSettings, unique_id: str, hook: Hook
) -> None:
    settings = notify_settings(kafka_settings, unique_id, webhook_url=hook.url)
    hook.up = False
    async with running(settings):
        logouts = [
            alert_record(f"l{n}", "channel_logout", severity="critical", message_key=None, channel=f"c{n}")
            for n in range(5)
        ]
        await produce(kafka_settings, [*logouts, *(alert_record(f"m{n}") for n in range(20))])
        # Five logouts alone and the twenty failures as one group: six parked notifications.
        await consume(kafka_settings.bootstrap_servers, settings.parked(), until=lambda r: len(r) >= 6, within=30)
        assert hook.received == []
        hook.up = True
        expected = {*(f"l{n}" for n in range(5)), *(f"m{n}" for n in range(20))}
        await wait_until(lambda: _some(set(hook.alert_ids()) == expected), within=30, what="the redrive")
    assert sorted(hook.alert_ids()) == sorted(expected)


async def test_two_named_webhooks_one_down_the_other_is_told_at_once_the_down_one_when_back(
    kafka_settings: KafkaSettings,
    unique_id: str,
    hook: Hook,
    other_hook: Hook,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ops, support = hook, other_hook
    notify_file = tmp_path / "notify.toml"
    notify_file.write_text(
        f"""
[[sinks.webhook]]
name = "ops-slack"
url = "{ops.url}"

[[sinks.webhook]]
name = "support-hook"
url = "{support.url}"

[[routes]]
channels = ["sales"]
sinks = ["ops-slack", "support-hook"]
"""
    )
    monkeypatch.setenv("STATUSFLOW_NOTIFY_FILE", str(notify_file))
    settings = notify_settings(kafka_settings, unique_id)
    assert settings.sink_names() == ("ops-slack", "support-hook")
    support.up = False
    logouts = [
        alert_record(
            f"l{n}", "channel_logout", severity="critical", message_key=None, occurred_at=1_700_000_000_000 + n
        )
        for n in range(3)
    ]
    failures = [alert_record(f"m{n}") for n in range(10)]
    expected = {alert["alert_id"] for alert in [*logouts, *failures]}
    async with running(settings):
        await produce(kafka_settings, [*logouts, *failures])
        await wait_until(lambda: _some(set(ops.alert_ids()) == expected), within=30, what="the sink that is up")
        # Three logouts alone and the failures as one group, parked for the down sink only.
        parked = await consume(
            kafka_settings.bootstrap_servers, settings.parked(), until=lambda r: len(r) >= 4, within=30
        )
        assert support.received == []
        assert {key for key, _ in parked} == {b"support-hook"}
        assert all(value.startswith(codec("parked_notification").header) for _, value in parked)
        support.up = True
        await wait_until(lambda: _some(set(support.alert_ids()) == expected), within=30, what="the sink that is back")
    # Stopped: nothing more can arrive. Each sink was told each alert exactly once.
    assert sorted(ops.alert_ids()) == sorted(expected)
    assert sorted(support.alert_ids()) == sorted(expected)


async def test_an_upgrade_keeps_parked_json_and_the_ledger_of_bare_keys(
    kafka_settings: KafkaSettings, unique_id: str, hook: Hook
) -> None:
    """Records an earlier notifier wrote: a JSON parking record and a ledger record whose value is
    `1`. The parked notification is delivered, the alert in the ledger is not told again, and what
    this notifier writes is Avro."""
    settings = notify_settings(kafka_settings, unique_id, webhook_url=hook.url)
    await ensure_topics(kafka_settings, extra=own_topics(settings))
    # The alert as the earlier notifier's JSON held it: the Alert fields, no window.
    legacy_alert = {k: v for k, v in alert_record("parked-before").items() if k not in {"window_start", "window_end"}}
    legacy_parked = orjson.dumps(
        {
            "sink": "webhook",
            "key": "group:meta:sales",
            "parked_at": 1_700_000_005_000,
            "reason": "http://127.0.0.1:9/hook answered 503: ",
            "alerts": [{**legacy_alert, "tenant": None}],
        }
    )
    producer = AIOKafkaProducer(bootstrap_servers=kafka_settings.bootstrap_servers, acks="all")
    await producer.start()
    try:
        await producer.send_and_wait(settings.parked(), key=b"webhook", value=legacy_parked)
        await producer.send_and_wait(settings.delivered(), key=b"webhook|told-before", value=b"1")
    finally:
        await producer.stop()

    async with running(settings):
        await wait_until(lambda: _some("parked-before" in hook.alert_ids()), within=30, what="the parked JSON")
        await produce(kafka_settings, [alert_record("told-before"), alert_record("new")])
        await wait_until(lambda: _some("new" in hook.alert_ids()), within=30, what="the new alert")
    assert sorted(hook.alert_ids()) == ["new", "parked-before"]

    ledger = await consume(
        kafka_settings.bootstrap_servers,
        settings.delivered(),
        until=lambda records: {b"webhook|new", b"webhook|parked-before"} <= {key for key, _ in records},
        within=30,
    )
    written = {key: value for key, value in ledger if key != b"webhook|told-before"}
    assert {codec("delivered_alert").decode(value)["alert_id"] for value in written.values()} == {
        "new",
        "parked-before",
    }


async def _some(condition: object) -> bool | None:
    return True if condition else None


# --- Alertmanager -------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def alertmanager_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real Alertmanager (Debian's prometheus-alertmanager) on a free loopback port."""
    if shutil.which(ALERTMANAGER) is None:
        pytest.fail(f"{ALERTMANAGER} is missing: `make alertmanager` installs it (make test does)")
    folder = tmp_path_factory.mktemp("alertmanager")
    config = folder / "alertmanager.yml"
    config.write_text("route:\n  receiver: nobody\nreceivers:\n  - name: nobody\n")
    port = free_port()
    log_path = folder / "alertmanager.log"
    log = log_path.open("wb")
    proc = subprocess.Popen(
        [
            ALERTMANAGER,
            f"--config.file={config}",
            f"--storage.path={folder / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--cluster.listen-address=",
        ],
        stdout=log,
        stderr=log,
    )
    url = f"http://127.0.0.1:{port}"

    deadline = time.monotonic() + 60
    try:
        while not _answers(f"{url}/-/ready"):
            if proc.poll() is not None or time.monotonic() > deadline:
                log.flush()
                raise AssertionError(f"alertmanager not ready: {log_path.read_text(errors='replace')[-2000:]}")
            time.sleep(0.1)  # poll interval of the readiness probe
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        log.close()


def _answers(url: str) -> bool:
    with contextlib.suppress(OSError), urllib.request.urlopen(url, timeout=1) as response:
        return bool(response.status == 200)
    return False


async def _alertmanager_alerts(url: str, channel: str) -> list[dict[str, Any]]:
    async with aiohttp.ClientSession() as http, http.get(f"{url}/api/v2/alerts") as response:
        found: list[dict[str, Any]] = await response.json()
    return [a for a in found if a["labels"].get("channel") == channel]


async def test_alertmanager_sees_the_failure_and_the_logout_until_it_resolves(
    kafka_settings: KafkaSettings, unique_id: str, alertmanager_url: str
) -> None:
    channel = f"ch{unique_id}"
    settings = notify_settings(
        kafka_settings, unique_id, alertmanager_url=alertmanager_url, tenants={"acme": [channel]}
    )
    async with running(settings):
        await produce(
            kafka_settings,
            [
                alert_record("f1", channel=channel, campaign="spring"),
                alert_record("lo", "channel_logout", severity="critical", message_key=None, channel=channel),
            ],
        )

        async def both() -> list[dict[str, Any]] | None:
            found = await _alertmanager_alerts(alertmanager_url, channel)
            return found if len(found) == 2 else None

        found = await wait_until(both, within=30, what="both alerts in Alertmanager")
        by_kind = {a["labels"]["kind"]: a for a in found}
        failed = by_kind["message_failed"]["labels"]
        assert failed == {
            "alertname": "statusflow_message_failed",
            "kind": "message_failed",
            "severity": "warning",
            "provider": "meta",
            "channel": channel,
            "tenant": "acme",
            "campaign": "spring",
        }
        assert "meta:wamid.f1" in by_kind["message_failed"]["annotations"]["examples"]
        assert by_kind["channel_logout"]["status"]["state"] == "active"

        back = alert_record(
            "back",
            "channel_resolved",
            severity="info",
            message_key=None,
            channel=channel,
            occurred_at=1_700_000_060_000,
        )
        await produce(kafka_settings, [back])

        async def resolved() -> bool | None:
            kinds = {a["labels"]["kind"] for a in await _alertmanager_alerts(alertmanager_url, channel)}
            return True if kinds == {"message_failed"} else None

        await wait_until(resolved, within=30, what="the logout to resolve in Alertmanager")


# --- email --------------------------------------------------------------------------------------


@dataclasses.dataclass
class Inbox:
    messages: list[bytes] = dataclasses.field(default_factory=list)

    async def handle_DATA(self, server: object, session: Session, envelope: Envelope) -> str:
        assert isinstance(envelope.content, bytes)
        self.messages.append(envelope.content)
        return "250 OK"


@pytest.fixture
def smtp() -> Iterator[tuple[Inbox, int]]:
    inbox = Inbox()
    port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield inbox, port
    finally:
        controller.stop()


async def test_email_names_the_channel_and_counts(
    kafka_settings: KafkaSettings, unique_id: str, smtp: tuple[Inbox, int]
) -> None:
    inbox, port = smtp
    settings = notify_settings(
        kafka_settings,
        unique_id,
        smtp_host="127.0.0.1",
        smtp_port=port,
        smtp_starttls=False,
        email_to="ops@example.com, oncall@example.com",
    )
    async with running(settings):
        await produce(kafka_settings, [alert_record(f"e{n}") for n in range(3)])
        await wait_until(lambda: _some(inbox.messages), within=30, what="an email")
    [raw] = inbox.messages
    mail = message_from_bytes(raw)
    assert mail["Subject"] == "[statusflow] 3 message alerts on meta/sales: 3 message_failed"
    assert mail["To"] == "ops@example.com, oncall@example.com"
    assert "meta:wamid.e0" in mail.get_payload()
