"""`statusflow redrive` against the real broker and worker: a fix, a restart, redrive twice."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp

from devkit.kafka_local import free_port
from schemas.codec import codec
from schemas.envelope import REDRIVE_HEADER, RawWebhook
from schemas.settings import KafkaSettings
from schemas.topics import ensure_topics
from tests.integration.conftest import WorkerFactory, WorkerProcess
from tests.integration.helpers import post, read_topic, wait_until

CHANNELS = """
[[channels]]
name = "loja"
provider = "wpp"
{options}

[[channels]]
name = "outra"
provider = "wpp"
"""
# What the operator adds once the dead letters show that loja's panel sends `orbiting`.
FIX = '[channels.options]\nstatuses = { "orbiting" = "failed:rejected" }'


def wpp(request_id: str, channel: str, payload: dict[str, Any]) -> RawWebhook:
    now = int(time.time() * 1000)
    return RawWebhook(
        request_id=request_id,
        provider="wpp",
        channel=channel,
        received_at=now,
        content_type="application/json",
        url=f"http://127.0.0.1:8080/webhooks/wpp/{channel}",
        body=json.dumps({**payload, "timestamp": now // 1000 - 60}).encode(),
        headers={"user-agent": "wpp-marketing"},
    )


async def redrive(settings: KafkaSettings, *args: str) -> tuple[int, str, str]:
    env = {
        **os.environ,
        "KAFKA_BOOTSTRAP_SERVERS": settings.bootstrap_servers,
        **{f"STATUSFLOW_TOPIC_{k.upper()}": v for k, v in settings.topics.model_dump().items()},
    }
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "statusflow_cli.main",
        "redrive",
        *args,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), timeout=120)
    return proc.returncode or 0, out.decode(), err.decode()


async def dead_letters(settings: KafkaSettings, at_least: int) -> list[dict[str, Any]]:
    """Every dead letter, once there are `at_least` of them (or what there is after 120 s)."""
    records = await read_topic(
        settings.bootstrap_servers, settings.topics.dlq, until=lambda r: len(r) >= at_least, within=120
    )
    letters = [codec("dead_letter").decode(v) for _, v in records]
    assert len(letters) >= at_least, [(d["request_id"], d["reason"]) for d in letters]
    return letters


def of(letters: list[dict[str, Any]], request_id: str) -> list[str]:
    return [d["reason"] for d in letters if d["request_id"] == request_id]


async def answer(worker: WorkerProcess, path: str) -> dict[str, Any] | None:
    try:
        async with aiohttp.ClientSession() as http, http.get(f"{worker.url}{path}") as response:
            return await response.json() if response.status == 200 else None
    except aiohttp.ClientError:
        return None


async def redrive_ok(settings: KafkaSettings, *args: str) -> str:
    """The output of a redrive that succeeded; its last line is the summary."""
    code, out, err = await redrive(settings, *args)
    assert code == 0, err
    return out


async def test_a_webhook_dead_lettered_for_an_unknown_word_is_tracked_once_after_the_fix_and_two_redrives(
    kafka_settings: KafkaSettings, start_worker: WorkerFactory, tmp_path: Path, unique_id: str
) -> None:
    await ensure_topics(kafka_settings)
    channels = tmp_path / "channels.toml"
    channels.write_text(CHANNELS.format(options=""), encoding="utf-8")
    message = f"m-{unique_id}"
    fixed = wpp(f"fixed-{unique_id}", "loja", {"id": message, "status": "orbiting", "phone": "5511987654321"})
    # The same word, but no message id either: still a dead letter after the fix, for a new reason.
    broken = wpp(f"broken-{unique_id}", "loja", {"status": "orbiting"})
    elsewhere = wpp(f"elsewhere-{unique_id}", "outra", {"id": f"o-{unique_id}", "status": "orbiting"})
    await post(kafka_settings, fixed, broken, elsewhere)
    worker = start_worker(STATUSFLOW_CHANNELS_FILE=str(channels))
    assert all("orbiting" in d["reason"] for d in await dead_letters(kafka_settings, 3))

    # The fix, and a worker restarted with it.
    worker.stop()
    channels.write_text(CHANNELS.format(options=FIX), encoding="utf-8")
    worker = start_worker(STATUSFLOW_CHANNELS_FILE=str(channels))
    loja = ("--channel", "loja", "--reason", "ORBITING")

    lines = (await redrive_ok(kafka_settings, *loja, "--dry-run")).splitlines()
    assert sorted(line.split("\t")[:4] for line in lines[:-1]) == [
        ["send", broken.request_id, "wpp", "loja"],
        ["send", fixed.request_id, "wpp", "loja"],
    ]
    assert lines[-1] == "dry run: read 3 dead letters, matched 2 webhooks, would send 2, skipped 0"
    assert len(await read_topic(kafka_settings.bootstrap_servers, kafka_settings.topics.raw)) == 3  # sent nothing

    out = await redrive_ok(kafka_settings, *loja)
    assert out.strip().endswith("read 3 dead letters, matched 2 webhooks, sent 2, skipped 0"), out

    async def tracked() -> dict[str, Any] | None:
        state = await answer(worker, f"/messages/wpp/loja/{message}")
        return state if state is not None and state["status"] == "failed" else None

    state = await wait_until(tracked, within=120, what="the redriven webhook tracked as failed")
    assert state["failure"]["reason"] == "rejected"
    after_first = await dead_letters(kafka_settings, 4)  # the broken one came back, once
    assert len(of(after_first, fixed.request_id)) == 1
    [original, again] = of(after_first, broken.request_id)
    assert "orbiting" in original and "message id" in again

    # The same command again: the fixed webhook's attempt was redriven already; the broken one's
    # latest attempt no longer matches the reason.
    out = await redrive_ok(kafka_settings, *loja)
    assert out.strip().endswith("read 4 dead letters, matched 1 webhooks, sent 0, skipped 1 (1 already redriven)"), out
    # Every webhook of the channel: the broken one goes back once more, the fixed one is skipped.
    out = await redrive_ok(kafka_settings, "--channel", "loja")
    assert out.strip().endswith("read 4 dead letters, matched 2 webhooks, sent 1, skipped 1 (1 already redriven)"), out
    after_second = await dead_letters(kafka_settings, 5)
    assert len(of(after_second, broken.request_id)) == 3  # once per run that sent it
    assert len(of(after_second, fixed.request_id)) == 1
    assert len(of(after_second, elsewhere.request_id)) == 1  # another channel: never sent

    # Even sent again on purpose, the fixed webhook is tracked once.
    assert "sent 1," in await redrive_ok(kafka_settings, *loja, "--again")
    await tracked_once(kafka_settings, worker, fixed, message)
    await marked_and_logged(kafka_settings, fixed, broken)


async def tracked_once(settings: KafkaSettings, worker: WorkerProcess, fixed: RawWebhook, message: str) -> None:
    """Once the worker has taken the last redrive for a duplicate: one change, one `changed`."""
    audits = codec("audit_record")

    def duplicate_tracked(records: list[tuple[bytes | None, bytes]]) -> bool:
        return any(
            (r := audits.decode(v))["request_id"] == fixed.request_id
            and r["stage"] == "track"
            and r["outcome"] == "duplicate"
            for _, v in records
        )

    audit = await read_topic(settings.bootstrap_servers, settings.topics.audit, until=duplicate_tracked, within=120)
    assert duplicate_tracked(audit), worker.log_tail()
    # Each attempt has its own audit record: a redrive is not a repeat of the first.
    normalized = sorted(
        r["audit_id"]
        for r in (audits.decode(v) for _, v in audit)
        if r["request_id"] == fixed.request_id and r["stage"] == "normalize"
    )
    assert normalized == [
        f"{fixed.request_id}:normalize:",
        *(f"{fixed.request_id}:normalize:redrive-{g}" for g in (1, 2)),
    ]
    changes = await read_topic(settings.bootstrap_servers, settings.topics.changes)
    statuses = [codec("status_change").decode(v)["status"] for k, v in changes if k == f"wpp:loja:{message}".encode()]
    assert statuses == ["failed"]
    history = await answer(worker, f"/messages/wpp/loja/{message}/history")
    assert history is not None
    assert [(e["request_id"], e["outcome"]) for e in history["history"]] == [
        (fixed.request_id, "dead_lettered"),
        (fixed.request_id, "changed"),
    ]


async def marked_and_logged(settings: KafkaSettings, fixed: RawWebhook, broken: RawWebhook) -> None:
    """The raw log holds each redrive as sent, marked; the redrive log names each one."""
    raw = [RawWebhook.from_avro(v) for _, v in await read_topic(settings.bootstrap_servers, settings.topics.raw)]
    ours = (fixed.request_id, broken.request_id)
    assert sorted((w.request_id, w.headers.get(REDRIVE_HEADER, "-")) for w in raw if w.request_id in ours) == [
        (broken.request_id, "-"),
        (broken.request_id, "1"),
        (broken.request_id, "2"),
        (fixed.request_id, "-"),
        (fixed.request_id, "1"),
        (fixed.request_id, "2"),
    ]
    assert {w.body for w in raw if w.request_id == fixed.request_id} == {fixed.body}
    log = [codec("redrive").decode(v) for _, v in await read_topic(settings.bootstrap_servers, settings.topics.redrive)]
    assert sorted((r["request_id"], r["generation"]) for r in log) == [
        (broken.request_id, 1),
        (broken.request_id, 2),
        (fixed.request_id, 1),
        (fixed.request_id, 2),
    ]


async def test_redrive_without_a_broker_or_a_dead_letter_topic_says_so_in_one_line(
    kafka_settings: KafkaSettings,
) -> None:
    code, _, err = await redrive(kafka_settings, "--dry-run")
    assert code == 2, err
    assert f"the dead-letter topic {kafka_settings.topics.dlq} does not exist" in err
    unreachable = kafka_settings.model_copy(update={"bootstrap_servers": f"127.0.0.1:{free_port()}"})
    code, _, err = await redrive(unreachable)
    assert code == 3, err
    assert err.startswith("statusflow: cannot reach the broker") and err.count("\n") == 1
