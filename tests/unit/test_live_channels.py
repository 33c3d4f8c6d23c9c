"""Live channels: a reload swaps the whole configuration or nothing, says what changed, and
the receiver routes and authenticates with what is in force (the file watch included)."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from prometheus_client import CollectorRegistry

from receiver.app import create_app
from receiver.settings import ReceiverSettings
from schemas.channels import ChannelsConfig
from schemas.errors import ConfigurationError
from schemas.live_channels import LiveChannels, ReloadMetrics, reloading, watch
from tests.factories import FIXTURES
from tests.unit.test_receiver_http import RecordingPublisher

BODY = (FIXTURES / "meta" / "status_sent.json").read_bytes()
JSON = {"Content-Type": "application/json"}

SHOP = '[[channels]]\nname = "shop"\nprovider = "meta"\n'
BOT = '[[channels]]\nname = "bot"\nprovider = "aivo"\n[channels.auth]\nkind = "header_token"\nsecret = "{secret}"\n'


def write(path: Path, text: str) -> None:
    """As an operator's tool should: a new file renamed over the old one, never half-written."""
    temporary = path.with_suffix(".tmp")
    temporary.write_text(text, encoding="utf-8")
    temporary.replace(path)


def sample(registry: CollectorRegistry, name: str) -> float:
    value = registry.get_sample_value(name)
    assert value is not None, name
    return value


@pytest.fixture
def channels_file(tmp_path: Path) -> Path:
    path = tmp_path / "channels.toml"
    write(path, SHOP + BOT.format(secret="first-token"))
    return path


def loaded(path: Path) -> tuple[LiveChannels, CollectorRegistry]:
    live = LiveChannels.load(path, {})
    registry = CollectorRegistry()
    live.report_to(ReloadMetrics.register(registry))
    return live, registry


def test_a_reload_swaps_in_the_new_configuration_and_tells_subscribers(channels_file: Path) -> None:
    live, registry = loaded(channels_file)
    before = live.current
    seen: list[ChannelsConfig] = []
    live.subscribe(seen.append)
    write(
        channels_file,
        SHOP + BOT.format(secret="first-token") + '[[channels]]\nname = "acme-wa"\nprovider = "generic"\n',
    )
    assert live.reload("test")
    assert [c.name for c in live.current.channels] == ["shop", "bot", "acme-wa"]
    assert seen == [live.current]
    # The old object is untouched: whoever read it before the reload keeps a whole configuration.
    assert [c.name for c in before.channels] == ["shop", "bot"]
    assert sample(registry, "statusflow_config_channels") == 3
    assert sample(registry, "statusflow_config_last_reload_success") == 1


def test_a_broken_file_keeps_the_last_good_configuration_and_counts_a_failure(
    channels_file: Path, caplog: pytest.LogCaptureFixture
) -> None:
    live, registry = loaded(channels_file)
    good = live.current
    write(channels_file, SHOP + '[[channels]]\nname = "bot"\nprovider = "aivo"\nstatuses = ["lost"]\n')
    with caplog.at_level(logging.ERROR):
        assert not live.reload("file changed")
    assert live.current is good
    assert sample(registry, "statusflow_config_reload_failures_total") == 1
    assert sample(registry, "statusflow_config_last_reload_success") == 0
    # The log names the file, the channel and the field.
    [record] = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert str(channels_file) in record.getMessage()
    assert "channel 'bot'" in record.getMessage()
    assert "statuses" in record.getMessage()

    write(channels_file, "[[channels]\nbroken")  # not TOML at all
    assert not live.reload("file changed")
    assert live.current is good
    assert sample(registry, "statusflow_config_reload_failures_total") == 2

    write(channels_file, SHOP + BOT.format(secret="first-token"))  # back as it was
    assert not live.reload("file changed")  # nothing to apply...
    assert sample(registry, "statusflow_config_last_reload_success") == 1  # ...but it loads again


def test_a_check_of_the_process_refuses_like_a_bad_file(channels_file: Path) -> None:
    live, registry = loaded(channels_file)

    def no_acme(config: ChannelsConfig) -> None:
        if config.get("acme-wa") is not None:
            raise ConfigurationError(f"{config.source}: channel 'acme-wa': field options: refused")

    live.add_check(no_acme)
    write(channels_file, SHOP + '[[channels]]\nname = "acme-wa"\nprovider = "generic"\n')
    assert not live.reload("file changed")
    assert live.current.get("acme-wa") is None
    assert sample(registry, "statusflow_config_reload_failures_total") == 1


def test_a_successful_reload_logs_what_changed_without_secrets(
    channels_file: Path, caplog: pytest.LogCaptureFixture
) -> None:
    live, _ = loaded(channels_file)
    write(channels_file, BOT.format(secret="second-token"))
    with caplog.at_level(logging.INFO):
        assert live.reload("SIGHUP")
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert "removed channel shop" in text
    assert "changed channel bot (auth.secret rotated)" in text
    assert "first-token" not in text
    assert "second-token" not in text


def test_sighup_reads_an_unchanged_file_and_says_so(channels_file: Path, caplog: pytest.LogCaptureFixture) -> None:
    live, _ = loaded(channels_file)
    with caplog.at_level(logging.INFO):
        assert not live.reload("SIGHUP")
    assert "no change" in caplog.text


async def test_the_file_watch_applies_a_change_without_being_asked(channels_file: Path) -> None:
    live, _ = loaded(channels_file)
    watching = asyncio.create_task(watch(live, 0.02))
    try:
        write(channels_file, SHOP)
        deadline = time.monotonic() + 10
        while live.current.get("bot") is not None:
            assert time.monotonic() < deadline, "the watch did not reload within 10 s"
            await asyncio.sleep(0.02)  # poll interval of the condition
    finally:
        watching.cancel()
    assert [c.name for c in live.current.channels] == ["shop"]


@pytest.fixture
async def receiver(channels_file: Path, tmp_path: Path) -> Any:
    live = LiveChannels.load(channels_file, os.environ)
    settings = ReceiverSettings(spool_dir=tmp_path / "spool", channels_poll_s=0)  # reloads by hand here
    client: TestClient[Any, Any] = TestClient(TestServer(create_app(settings, RecordingPublisher(), channels=live)))
    await client.start_server()
    yield client, live
    await client.close()


async def test_the_receiver_routes_and_authenticates_with_the_configuration_in_force(
    receiver: Any, channels_file: Path
) -> None:
    client, live = receiver
    aivo = (FIXTURES / "aivo" / "status_delivered.json").read_bytes()

    async def post(path: str, token: str | None = None) -> int:
        headers = {**JSON, **({"x-auth-token": token} if token else {})}
        async with client.post(path, data=aivo if "aivo" in path else BODY, headers=headers) as response:
            return response.status

    assert await post("/webhooks/meta/acme") == 404
    assert await post("/webhooks/aivo/bot", "first-token") == 200

    write(channels_file, '[[channels]]\nname = "acme"\nprovider = "meta"\n' + BOT.format(secret="second-token"))
    assert live.reload("SIGHUP")
    assert await post("/webhooks/meta/acme") == 200  # added
    assert await post("/webhooks/meta/shop") == 404  # removed: as an unknown channel
    assert await post("/webhooks/aivo/bot", "first-token") == 401  # re-keyed
    assert await post("/webhooks/aivo/bot", "second-token") == 200

    metrics = await (await client.get("/metrics")).text()
    assert "statusflow_config_last_reload_success 1.0" in metrics
    assert "statusflow_config_channels 2.0" in metrics


async def test_sighup_reloads_at_once(channels_file: Path) -> None:
    live, _ = loaded(channels_file)
    async with reloading(live, 0, sighup=True):  # no file watch: the signal alone
        write(channels_file, SHOP)
        os.kill(os.getpid(), signal.SIGHUP)
        deadline = time.monotonic() + 10
        while live.current.get("bot") is not None:
            assert time.monotonic() < deadline, "SIGHUP did not reload within 10 s"
            await asyncio.sleep(0.01)  # poll interval of the condition
    assert [c.name for c in live.current.channels] == ["shop"]


class HeldPublisher(RecordingPublisher):
    """Holds each raw webhook until told to let it through: a request caught in flight."""

    def __init__(self) -> None:
        super().__init__()
        self.entered = asyncio.Event()
        self.release = asyncio.Event()

    async def publish(self, topic: str, key: bytes, value: bytes) -> None:
        if topic.endswith("raw"):
            self.entered.set()
            await self.release.wait()
        await super().publish(topic, key, value)


async def test_a_request_in_flight_finishes_with_the_configuration_it_started_with(
    channels_file: Path, tmp_path: Path
) -> None:
    live = LiveChannels.load(channels_file, {})
    publisher = HeldPublisher()
    settings = ReceiverSettings(spool_dir=tmp_path / "spool", channels_poll_s=0)
    async with TestClient(TestServer(create_app(settings, publisher, channels=live))) as client:
        aivo = (FIXTURES / "aivo" / "status_delivered.json").read_bytes()
        headers = {**JSON, "x-auth-token": "first-token"}
        request = asyncio.create_task(client.post("/webhooks/aivo/bot", data=aivo, headers=headers))
        await asyncio.wait_for(publisher.entered.wait(), timeout=10)
        # The channel is removed while its request is being made durable.
        write(channels_file, SHOP)
        assert live.reload("SIGHUP")
        publisher.release.set()
        response = await request
        assert response.status == 200, await response.text()
        again = await client.post("/webhooks/aivo/bot", data=aivo, headers=headers)
        assert again.status == 404


def test_a_sighup_while_the_process_starts_does_not_end_it() -> None:
    # The entry points hold SIGHUP from their first line until the reload handler takes it.
    code = (
        "import os, signal\n"
        "from schemas.live_channels import hold_sighup\n"
        "hold_sighup()\n"
        "os.kill(os.getpid(), signal.SIGHUP)\n"
        "print('still running')\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False)
    assert (done.returncode, done.stdout) == (0, "still running\n"), done.stderr
