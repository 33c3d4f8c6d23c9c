"""Every statusflow command against the real broker: run, demo, tail, replay, loadgen, topics,
check-config, funnel (and export-parquet in test_consumer_kit), with their errors."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

import aiohttp
import orjson
import pytest

from devkit import kafka_local
from devkit.kafka_local import free_port
from schemas.codec import decode_any
from schemas.settings import KafkaSettings
from schemas.topics import TOPIC_CONFIGS, TOPIC_PARTITIONS
from statusflow_cli.samples import mixed_stream
from streams.domain.status import FailureReason
from tests.integration.conftest import REPO, WorkerFactory
from tests.integration.helpers import consume, faults_pythonpath, read_topic, wait_until
from tests.integration.test_funnel import EXPECTED as FUNNEL_COUNTS
from tests.integration.test_funnel import RATES as FUNNEL_RATES
from tests.integration.test_funnel import campaign_webhooks
from tests.integration.test_pipeline import produce_raw


async def _cli(settings: KafkaSettings, *args: str) -> tuple[int, str]:
    env = {
        **os.environ,
        "KAFKA_BOOTSTRAP_SERVERS": settings.bootstrap_servers,
        **{f"STATUSFLOW_TOPIC_{k.upper()}": v for k, v in settings.topics.model_dump().items()},
    }
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "statusflow_cli.main", *args, env=env, stdout=asyncio.subprocess.PIPE
    )
    out, _ = await asyncio.wait_for(proc.communicate(), timeout=120)
    return proc.returncode or 0, out.decode()


async def test_topics_creates_the_contract_and_tail_prints_decoded_records(kafka_settings: KafkaSettings) -> None:
    code, out = await _cli(kafka_settings, "topics")
    assert code == 0
    assert f"{kafka_settings.topics.raw}" in out and "created" in out
    code, again = await _cli(kafka_settings, "topics")
    assert "created" not in again and "exists" in again

    stream = mixed_stream(messages_per_kind=1, repeat_all=False, prefix="cli-")
    await produce_raw(kafka_settings, stream)
    code, out = await _cli(kafka_settings, "tail", "raw", "--from-beginning", "--limit", "5")
    lines = [orjson.loads(line) for line in out.splitlines()]
    assert code == 0
    assert len(lines) == 5
    assert {line["schema"] for line in lines} == {"raw_webhook"}
    assert {line["request_id"] for line in lines} <= {w.request_id for w in stream.webhooks}


async def test_demo_posts_every_provider_and_the_worker_shows_each_expected_state(
    kafka_settings: KafkaSettings, receiver_url: str, start_worker: WorkerFactory
) -> None:
    worker = start_worker()
    code, out = await _cli(
        kafka_settings, "demo", "--url", receiver_url, "--worker-url", worker.url, "--messages", "1", "--check"
    )
    assert code == 0, out + worker.log_tail()
    assert "of 9 providers" in out
    assert "reached their expected state" in out


async def _cli_all(env: dict[str, str], *args: str, timeout: float = 300) -> tuple[int, str, str]:  # noqa: ASYNC109 - a subprocess bound, not a cancel scope
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "statusflow_cli.main",
        *args,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), timeout=timeout)
    return proc.returncode or 0, out.decode(), err.decode()


def _env(settings: KafkaSettings, **extra: str) -> dict[str, str]:
    return {
        **os.environ,
        "KAFKA_BOOTSTRAP_SERVERS": settings.bootstrap_servers,
        **{f"STATUSFLOW_TOPIC_{k.upper()}": v for k, v in settings.topics.model_dump().items()},
        **extra,
    }


async def test_topics_check_reports_every_difference_from_the_contract(kafka_settings: KafkaSettings) -> None:
    code, out, _ = await _cli_all(_env(kafka_settings), "topics", "--check")
    assert code == 1
    assert f"MISMATCH {kafka_settings.topics.changes}: missing" in out
    code, _, _ = await _cli_all(_env(kafka_settings), "topics")
    assert code == 0
    code, out, _ = await _cli_all(_env(kafka_settings), "topics", "--check")
    assert code == 0 and "MISMATCH" not in out
    # The same topics checked against a contract of 8 partitions: each one differs.
    code, out, _ = await _cli_all(_env(kafka_settings, STATUSFLOW_PARTITIONS="8"), "topics", "--check")
    assert code == 1
    assert f"MISMATCH {kafka_settings.topics.raw}: 4 partitions, expected 8" in out
    # ... but those whose partitions are fixed (the notifier's parking topic).
    assert out.count("MISMATCH") == len(TOPIC_CONFIGS) - len(TOPIC_PARTITIONS)


async def test_tail_filters_alerts_by_kind(
    kafka_settings: KafkaSettings, receiver_url: str, start_worker: WorkerFactory
) -> None:
    worker = start_worker()
    code, out, err = await _cli_all(
        _env(kafka_settings), "demo", "--url", receiver_url, "--worker-url", worker.url, "--messages", "1", "--check"
    )
    assert code == 0, out + err + worker.log_tail()
    reference = mixed_stream(messages_per_kind=1, prefix="demo-").expected
    not_found = {k for k, s in reference.items() if s.failure and s.failure.reason is FailureReason.NOT_FOUND}

    async def number_not_found() -> list[dict[str, object]] | None:
        code, out, _ = await _cli_all(
            _env(kafka_settings), "tail", "alerts", "--from-beginning", "--kind", "number_not_found", "--exit-when-idle"
        )
        lines = [orjson.loads(line) for line in out.splitlines()]
        return lines if code == 0 and len(lines) >= len(not_found) else None

    lines = await wait_until(number_not_found, within=120, what="number_not_found alerts on the tail")
    assert {line["kind"] for line in lines} == {"number_not_found"}
    # One alert per message that failed as not found (Meta 131026, Gupshup 1002, WPP).
    assert {line["message_key"] for line in lines} == not_found
    assert len(not_found) >= 3


async def test_loadgen_sends_paced_webhooks_that_the_receiver_acknowledges(
    kafka_settings: KafkaSettings, receiver_url: str
) -> None:
    code, out, err = await _cli_all(
        _env(kafka_settings),
        "loadgen",
        "--url",
        receiver_url,
        "--rate",
        "50",
        "--duration",
        "2",
        "--mix",
        "meta=2,wpp=1",
    )
    assert code == 0, out + err
    assert "sent 100 in" in out and "acked 100, errors none" in out
    assert "latency ms (acked): p50" in out
    records = await consume(
        kafka_settings.bootstrap_servers, kafka_settings.topics.raw, until=lambda r: len(r) >= 100, within=60
    )
    providers = {orjson.loads(line)["provider"] for line in await _tail_raw(kafka_settings)}
    assert len(records) == 100
    assert providers == {"meta", "wpp"}


async def _tail_raw(settings: KafkaSettings) -> list[str]:
    _, out, _ = await _cli_all(_env(settings), "tail", "raw", "--from-beginning", "--limit", "100")
    return out.splitlines()


async def test_loadgen_refuses_out_of_bounds_and_remote_targets(kafka_settings: KafkaSettings) -> None:
    env = _env(kafka_settings)
    code, _, err = await _cli_all(env, "loadgen", "--rate", "100000")
    assert code == 2 and "--rate must be in" in err
    code, _, err = await _cli_all(env, "loadgen", "--url", "http://192.0.2.1:8080")
    assert code == 2 and "--allow-remote" in err
    code, _, err = await _cli_all(env, "loadgen", "--url", f"http://127.0.0.1:{free_port()}", "--count", "1")
    assert code == 3 and "cannot reach the receiver" in err


async def test_unreachable_broker_is_one_line_and_exit_code_3(kafka_settings: KafkaSettings, tmp_path: Path) -> None:
    env = {**_env(kafka_settings), "KAFKA_BOOTSTRAP_SERVERS": f"127.0.0.1:{free_port()}"}
    commands = [["topics"], ["topics", "--check"], ["tail", "changes"], ["export-parquet", "--out", str(tmp_path)]]
    commands.append(["replay", "--app-id", "unreachable", "--timeout", "5"])
    for command in commands:
        code, _, err = await _cli_all(env, *command)
        assert code == 3, (command, err)
        assert err.count("\n") == 1 and err.startswith("statusflow: cannot reach the broker"), (command, err)
        assert "Traceback" not in err


async def test_check_config_of_a_missing_file_says_so(kafka_settings: KafkaSettings, tmp_path: Path) -> None:
    code, _, err = await _cli_all(_env(kafka_settings), "check-config", str(tmp_path / "nope.toml"))
    assert code == 2 and "no such file" in err


async def test_replay_rebuilds_the_derived_topics_and_keeps_the_worker_log_apart(
    kafka_settings: KafkaSettings, tmp_path: Path, unique_id: str
) -> None:
    stream = mixed_stream(messages_per_kind=1, repeat_all=False, prefix="replay-cli-")
    await produce_raw(kafka_settings, stream)
    app_id = f"replay-cli-{unique_id}"
    env = _env(
        kafka_settings,
        STATUSFLOW_DATA_DIR=str(tmp_path / "replay"),
        STATUSFLOW_PARTITIONS="4",
        # Tracking lags behind normalize (as under load): "replayed" must still mean rebuilt.
        PYTHONPATH=faults_pythonpath(),
        STATUSFLOW_FAULT_DELAY_RECORDS_OF=f"{kafka_settings.topics.events}.{app_id}:0.5",
    )
    log = tmp_path / "replay-worker.log"
    code, out, err = await _cli_all(
        env, "replay", "--app-id", app_id, "--web-port", str(free_port()), "--timeout", "240", "--worker-log", str(log)
    )
    assert code == 0, out[-3000:] + err[-3000:] + log.read_text(errors="replace")[-3000:]
    # Only the result on stdout (a progress bar on a terminal); the worker talks into its log.
    assert out.split()[0:2] == ["replayed", str(len(stream.webhooks))], out[-3000:]
    assert "Worker" in log.read_text(errors="replace")
    # "replayed" means rebuilt: the changes topic already holds every message when it is said
    # (the replay worker has stopped, so nothing is added after this point).
    changes = await read_topic(kafka_settings.bootstrap_servers, f"{kafka_settings.topics.changes}.{app_id}")
    assert {decode_any(v)[1]["message_key"] for _, v in changes} >= set(stream.expected)


async def test_run_starts_broker_receiver_and_worker_and_stops_on_ctrl_c(tmp_path: Path) -> None:
    """`statusflow run` (what `make run` calls) on free ports: a webhook goes through, Ctrl-C stops all."""
    receiver_port, worker_port = free_port(), free_port()
    env = {
        # The test's broker and topics are not the stack's: `run` starts its own broker.
        **{
            k: v
            for k, v in os.environ.items()
            if k != "KAFKA_BOOTSTRAP_SERVERS" and not k.startswith("STATUSFLOW_TOPIC_")
        },
        "STATUSFLOW_KAFKA_PORT": str(free_port()),
        "STATUSFLOW_PORT": str(receiver_port),
        "STATUSFLOW_WEB_PORT": str(worker_port),
        "STATUSFLOW_LOCAL_DIR": str(tmp_path / "local"),
        "STATUSFLOW_PARTITIONS": "2",
    }
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "statusflow_cli.main",
        "run",
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    assert proc.stdout is not None
    seen: list[str] = []
    try:
        async with asyncio.timeout(300):
            while not any("Ctrl-C stops" in line for line in seen):
                line = (await proc.stdout.readline()).decode()
                assert line, "statusflow run ended early:\n" + "".join(seen)
                seen.append(line)
        body = (REPO / "tests" / "fixtures" / "meta" / "status_sent.json").read_bytes()
        async with aiohttp.ClientSession() as http:
            async with http.post(
                f"http://127.0.0.1:{receiver_port}/webhooks/meta",
                data=body,
                headers={"Content-Type": "application/json"},
            ) as response:
                assert response.status == 200, await response.text()
            message_id = orjson.loads(body)["entry"][0]["changes"][0]["value"]["statuses"][0]["id"]

            async def tracked() -> dict[str, object] | None:
                try:
                    async with http.get(f"http://127.0.0.1:{worker_port}/messages/meta/{message_id}") as answer:
                        return await answer.json() if answer.status == 200 else None
                except aiohttp.ClientError:
                    return None

            state = await wait_until(tracked, within=120, what="the worker started by `statusflow run` to track it")
            assert state["status"] == "sent"
        proc.send_signal(signal.SIGINT)
        rest, _ = await asyncio.wait_for(proc.communicate(), timeout=120)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert proc.returncode == 0
    assert "stopped" in rest.decode()
    port = int(env["STATUSFLOW_KAFKA_PORT"])
    assert not kafka_local.status(port=port, data_dir=tmp_path / "local" / f"kafka-{port}").alive


async def test_demo_without_a_receiver_says_so_in_one_line(kafka_settings: KafkaSettings) -> None:
    code, _, err = await _cli_all(_env(kafka_settings), "demo", "--url", f"http://127.0.0.1:{free_port()}")
    assert code == 3
    assert err.startswith("statusflow: cannot reach the receiver") and err.count("\n") == 1


async def test_funnel_prints_a_campaigns_cohort_rates_as_the_worker_answers_them(
    kafka_settings: KafkaSettings, receiver_url: str, start_worker: WorkerFactory, unique_id: str
) -> None:
    """Issue 15's campaign (10 sent, 6 delivered of which 4 read, 2 read without a delivery, 2
    errors, every webhook twice) through `statusflow funnel`, as a table and as JSON."""
    worker = start_worker()
    campaign = f"cli-{unique_id}"
    async with aiohttp.ClientSession() as http:
        for body in campaign_webhooks(campaign):
            async with http.post(
                f"{receiver_url}/webhooks/aivo", data=body, headers={"Content-Type": "application/json"}
            ) as response:
                assert response.status == 200, await response.text()

        async def settled() -> bool | None:
            try:
                async with http.get(f"{worker.url}/funnel/aivo/default", params={"campaign": campaign}) as answer:
                    view = await answer.json() if answer.status == 200 else {}
            except aiohttp.ClientConnectionError:
                return None  # the worker's web server is not up yet
            return True if view.get("attempted") == 10 and view.get("pending") == 0 else None

        await wait_until(settled, within=180, what="the campaign's funnel on the worker")

    env = _env(kafka_settings)
    asked = ("funnel", "aivo", "default", "--campaign", campaign, "--worker-url", worker.url)
    code, out, err = await _cli_all(env, *asked, "--json", timeout=60)
    assert code == 0, err
    view = orjson.loads(out)
    assert {k: view[k] for k in FUNNEL_COUNTS} == FUNNEL_COUNTS
    assert {k: view[k] for k in FUNNEL_RATES} == pytest.approx(FUNNEL_RATES)

    code, out, err = await _cli_all(env, *asked, timeout=60)
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].startswith(f"funnel of aivo:default campaign {campaign}: cohorts of 1 h")
    (cohort,) = [line for line in lines[2:] if not line.startswith(("total", "delivered", "failed"))]
    total = next(line for line in lines if line.startswith("total")).split()
    assert total == ["total", "10", "8", "6", "2", "0", "0", "80.0%", "75.0%", "20.0%"]
    assert cohort.split()[2:] == total[1:]  # one cohort: the total is that cohort
    assert "delivered includes 2 implied by a read" in out

    # A period before the cohort selects nothing; a worker that is gone is exit code 3.
    code, out, _ = await _cli_all(env, *asked, "--until", "1970-01-02T00:00:00Z", timeout=60)
    assert code == 0 and "no cohorts" in out
    worker.stop()
    code, out, err = await _cli_all(env, *asked, timeout=60)
    assert code == 3 and out == ""
    assert err.startswith(f"statusflow: cannot reach the worker at {worker.url}") and err.count("\n") == 1
