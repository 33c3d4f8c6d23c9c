"""Consumer-side tools against a real stack fed with `statusflow demo`: the example consumer,
the Parquet export (killed and restarted) of changes, metrics and cohort funnels, and the DuckDB
example's send-cohort rates over its files."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import signal
import sys
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import orjson
import pyarrow.parquet as pq
import pytest
from aiohttp.test_utils import TestServer
from aiokafka import AIOKafkaConsumer

from devkit.kafka_local import free_port
from receiver.app import create_app
from receiver.settings import ReceiverSettings
from schemas.settings import KafkaSettings, TopicNames
from schemas.topics import ensure_topics
from statusflow_cli.samples import T0 as SAMPLES_T0
from statusflow_cli.samples import mixed_stream
from statusflow_consumer import Decoded, decode_message, funnel_key, partitions_of
from statusflow_consumer.parquet import event_date
from streams.domain.funnel import DEFAULT_COHORT_MS, funnel_of, summary
from tests.integration.conftest import REPO
from tests.integration.helpers import wait_until

DEMO_MESSAGES = 2  # `statusflow demo --messages`: lifecycles per provider kind
# What a campaign's funnel is compared on (the rates follow from them).
FUNNEL_COUNTS = ("attempted", "delivered", "read", "failed", "expired", "pending")


@dataclasses.dataclass(frozen=True)
class DemoTopics:
    """Topics filled by a worker from the demo, frozen (the worker is stopped)."""

    settings: KafkaSettings
    env: dict[str, str]
    records: dict[str, list[Decoded]]  # topic → every record, in (partition, offset) order


def _env(settings: KafkaSettings) -> dict[str, str]:
    return {
        **os.environ,
        "KAFKA_BOOTSTRAP_SERVERS": settings.bootstrap_servers,
        **{f"STATUSFLOW_TOPIC_{k.upper()}": v for k, v in settings.topics.model_dump().items()},
    }


async def read_all(settings: KafkaSettings, topic: str) -> list[Decoded]:
    """Every record of `topic` up to its current end."""
    tps = await partitions_of(settings.bootstrap_servers, [topic])
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.bootstrap_servers, group_id=None)
    await consumer.start()
    try:
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        ends = await consumer.end_offsets(tps)
        records: list[Decoded] = []
        deadline = time.monotonic() + 60
        while [tp for tp, end in ends.items() if await consumer.position(tp) < end]:
            assert time.monotonic() < deadline, f"reading {topic} took over 60 s"
            for batch in (await consumer.getmany(timeout_ms=500)).values():
                records += [item for item in map(decode_message, batch) if item is not None]
    finally:
        await consumer.stop()
    return sorted(records, key=lambda r: (r.partition, r.offset))


def campaign_totals(records: list[Decoded]) -> dict[str, Counter[str]]:
    """Transitions per campaign over the latest revision of every campaign window."""
    latest: dict[str, dict[str, Any]] = {}
    for item in records:
        r = item.record
        if r["scope"] == "campaign" and r["revision"] >= latest.get(r["metric_id"], {}).get("revision", -1):
            latest[r["metric_id"]] = r
    totals: dict[str, Counter[str]] = {}
    for r in latest.values():
        totals.setdefault(r["campaign"], Counter()).update(r["transitions"])
    return totals


def campaign_funnels(records: list[Decoded]) -> dict[str, dict[str, int]]:
    """Counts per campaign, summed over the last record of every campaign cohort (an upsert topic)."""
    last: dict[str, dict[str, Any]] = {}
    for item in records:
        r = item.record
        key = item.key or funnel_key(r)
        if r["scope"] == "campaign" and r["revision"] >= last.get(key, {}).get("revision", -1):
            last[key] = r
    totals: dict[str, dict[str, int]] = {}
    for r in last.values():
        row = totals.setdefault(r["campaign"], dict.fromkeys(FUNNEL_COUNTS, 0))
        for name in FUNNEL_COUNTS:
            row[name] += r[name]
    return totals


def expected_campaign_funnels() -> dict[str, dict[str, int]]:
    """The campaigns' funnels computed from the demo's reference states (streams.domain.funnel)."""
    stream = mixed_stream(messages_per_kind=DEMO_MESSAGES, prefix="demo-")
    totals: dict[str, dict[str, int]] = {}
    for cohort, counts in funnel_of(stream.expected.values(), DEFAULT_COHORT_MS).items():
        if cohort.campaign is not None:
            row = totals.setdefault(cohort.campaign, dict.fromkeys(FUNNEL_COUNTS, 0))
            for name in FUNNEL_COUNTS:
                row[name] += summary(counts)[name]
    return totals


def expected_campaign_totals() -> dict[str, Counter[str]]:
    """What the demo's reference fold says each campaign's messages reached (one transition per status)."""
    stream = mixed_stream(messages_per_kind=DEMO_MESSAGES, prefix="demo-")
    totals: dict[str, Counter[str]] = {}
    for state in stream.expected.values():
        if state.campaign is None:
            continue
        counts = totals.setdefault(state.campaign, Counter())
        for status in ("sent", "delivered", "read"):
            counts[status] += getattr(state, f"{status}_at") is not None
    return totals


@pytest.fixture(scope="module")
async def demo_topics(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[DemoTopics]:
    """Receiver and worker on this module's topics, the demo posted, every campaign window published."""
    tmp = tmp_path_factory.mktemp("demo-stack")
    unique = uuid.uuid4().hex[:10]
    settings = KafkaSettings(
        bootstrap_servers=kafka_bootstrap, topics=TopicNames().prefixed(f"t{unique}."), partitions=4
    )
    await ensure_topics(settings)
    server = TestServer(
        create_app(ReceiverSettings(**settings.model_dump(), spool_dir=tmp / "spool")), host="127.0.0.1"
    )
    await server.start_server()
    env = _env(settings)
    port = free_port()
    log = tmp / "worker.log"
    worker_env = {
        **env,
        "STATUSFLOW_APP_ID": f"statusflow-{unique}",
        "STATUSFLOW_WEB_PORT": str(port),
        "STATUSFLOW_DATA_DIR": str(tmp / "worker"),
        # 2025 event times (see --start below) must not meet the retention of a worker living in 2026.
        "STATUSFLOW_RETENTION_FINISHED_S": "315360000",
        "STATUSFLOW_RETENTION_UNFINISHED_S": "315360000",
        "STATUSFLOW_IDLE_CLOSE_S": "2",
    }
    with log.open("wb") as log_file:
        worker = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "streams", cwd=REPO, env=worker_env, stdout=log_file, stderr=log_file
        )
    try:
        receiver_url = str(server.make_url("")).rstrip("/")
        code, out, err = await _run(
            env,
            *("demo", "--url", receiver_url, "--worker-url", f"http://127.0.0.1:{port}"),
            *("--messages", str(DEMO_MESSAGES), "--check", "--timeout", "240"),
            # The samples' own 2025 dates: the export must file records by event date, which then
            # differs from the day the test runs (Twilio's, which carry none, use the receipt).
            *("--start", str(SAMPLES_T0)),
        )
        assert code == 0, out + err + log.read_text(errors="replace")
        expected = expected_campaign_totals()

        async def every_campaign_window() -> bool | None:
            totals = campaign_totals(await read_all(settings, settings.topics.metrics))
            return True if all(totals.get(c, Counter()) >= e for c, e in expected.items()) else None

        await wait_until(every_campaign_window, within=180, what="campaign windows covering every demo message")
        funnels = expected_campaign_funnels()

        async def every_campaign_cohort() -> bool | None:
            return True if campaign_funnels(await read_all(settings, settings.topics.funnel)) == funnels else None

        await wait_until(every_campaign_cohort, within=120, what="campaign cohorts of every demo message on wa.funnel")
    finally:
        worker.terminate()
        await asyncio.wait_for(worker.wait(), timeout=60)
        await server.close()
    topics = (settings.topics.changes, settings.topics.alerts, settings.topics.metrics, settings.topics.funnel)
    yield DemoTopics(settings, env, {topic: await read_all(settings, topic) for topic in topics})


async def test_example_consumer_prints_decoded_changes_alerts_and_metrics(demo_topics: DemoTopics) -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        str(REPO / "examples" / "consume_all.py"),
        "--from-beginning",
        "--idle-polls",
        "5",
        env=demo_topics.env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), timeout=180)
    assert proc.returncode == 0, err.decode()
    lines = [orjson.loads(line) for line in out.splitlines()]
    by_schema = Counter(line["schema"] for line in lines)
    topics = demo_topics.settings.topics
    # Every distinct record once: the repeats at-least-once may bring are dropped by id.
    for topic, schema, id_field in (
        (topics.changes, "status_change", "change_id"),
        (topics.alerts, "alert", "alert_id"),
    ):
        distinct = {r.record[id_field] for r in demo_topics.records[topic]}
        assert by_schema[schema] == len(distinct) > 0
    windows = {(r.record["metric_id"], r.record["revision"]) for r in demo_topics.records[topics.metrics]}
    assert by_schema["metric_window"] == len(windows) > 0
    cohorts = {(r.record["funnel_id"], r.record["revision"]) for r in demo_topics.records[topics.funnel]}
    assert by_schema["cohort_funnel"] == len(cohorts) > 0
    change = next(line for line in lines if line["schema"] == "status_change")
    assert change["topic"] == topics.changes and change["key"] == change["message_key"]
    kinds = {line["kind"] for line in lines if line["schema"] == "alert"}
    assert {"number_not_found", "message_failed", "channel_logout"} <= kinds


async def _start(env: dict[str, str], *args: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "statusflow_cli.main",
        *args,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )


async def _run(env: dict[str, str], *args: str) -> tuple[int, str, str]:
    """Run `statusflow ARGS` to its end (at most 5 minutes): exit code, stdout, stderr."""
    proc = await _start(env, *args)
    out, err = await asyncio.wait_for(proc.communicate(), timeout=300)
    return proc.returncode or 0, out.decode(), err.decode()


def _landed(out: Path) -> dict[str, list[dict[str, Any]]]:
    """Rows per topic directory of an export."""
    rows: dict[str, list[dict[str, Any]]] = {}
    for path in sorted(out.glob("topic=*/date=*/*.parquet")):
        topic = path.parts[-3].removeprefix("topic=")
        rows.setdefault(topic, []).extend(pq.read_table(path).to_pylist())
    return rows


async def test_export_lands_every_record_once_across_a_kill_and_a_lost_commit(
    demo_topics: DemoTopics, tmp_path: Path
) -> None:
    out = tmp_path / "export"
    group = f"export-{uuid.uuid4().hex[:8]}"
    # Tiny files, so that the kill lands between files.
    export = ("export-parquet", "--out", str(out), "--group", group, "--batch-records", "3")
    first = await _start(demo_topics.env, *export, "--flush-interval", "0.2")
    try:

        async def some_files() -> bool | None:
            return True if any(out.glob("topic=*/date=*/*.parquet")) or first.returncode is not None else None

        await wait_until(some_files, within=120, what="the first Parquet files")
    finally:
        if first.returncode is None:
            first.send_signal(signal.SIGKILL)
        await asyncio.wait_for(first.wait(), timeout=30)

    code, out_text, err_text = await _run(demo_topics.env, *export, "--until-end")
    assert code == 0, err_text
    assert "exported" in out_text

    landed = _landed(out)
    for topic, records in demo_topics.records.items():
        if topic == demo_topics.settings.topics.alerts:
            continue
        rows = landed[topic]
        positions = [(row["kafka_partition"], row["kafka_offset"]) for row in rows]
        assert len(positions) == len(set(positions)), f"duplicate rows in {topic}"
        assert sorted(positions) == [(r.partition, r.offset) for r in records], f"rows of {topic} != its records"
    changes = {r.record["change_id"] for r in demo_topics.records[demo_topics.settings.topics.changes]}
    assert {row["change_id"] for row in landed[demo_topics.settings.topics.changes]} == changes
    # Each row sits in the directory of its own event date (the demo's, or today's for Twilio,
    # whose webhooks carry no time and are stamped at receipt).
    by_position = {(t, r.partition, r.offset): r for t, records in demo_topics.records.items() for r in records}
    for path in out.glob("topic=*/date=*/*.parquet"):
        topic, date = path.parts[-3].removeprefix("topic="), path.parts[-2].removeprefix("date=")
        for row in pq.read_table(path).to_pylist():
            assert event_date(by_position[topic, row["kafka_partition"], row["kafka_offset"]]) == date
    assert "2025-06-15" in {p.parts[-2].removeprefix("date=") for p in out.glob("topic=*/date=*/*.parquet")}

    # The group's commits lost (a new group): the files alone say where each partition is.
    files_before = sorted(p.name for p in out.rglob("*.parquet"))
    code, out_text, err_text = await _run(
        demo_topics.env, "export-parquet", "--out", str(out), "--group", f"{group}-new", "--until-end"
    )
    assert code == 0, err_text
    assert "exported 0 records in 0 files" in out_text
    assert sorted(p.name for p in out.rglob("*.parquet")) == files_before


async def test_duckdb_example_gives_each_campaigns_daily_rates(demo_topics: DemoTopics, tmp_path: Path) -> None:
    from examples.analytics import campaign_rates

    out = tmp_path / "export"
    code, _, err_text = await _run(demo_topics.env, "export-parquet", "--out", str(out), "--until-end")
    assert code == 0, err_text

    rows = campaign_rates(out, demo_topics.settings.topics.funnel)
    by_campaign = {campaign: (str(day), *rest) for campaign, day, *rest in rows}
    # Against the last cohort records read from the topic, and against the demo's reference fold.
    funnels = campaign_funnels(demo_topics.records[demo_topics.settings.topics.funnel])
    expected = expected_campaign_funnels()
    assert set(by_campaign) == set(funnels) == set(expected) == {"hot-sale", "c-77"}
    for campaign, (day, attempted, delivered, read, failed, pending, *rates) in by_campaign.items():
        assert day == "2025-06-15"
        counts = {"attempted": attempted, "delivered": delivered, "read": read, "failed": failed, "pending": pending}
        assert counts == {name: funnels[campaign][name] for name in counts}
        assert counts == {name: expected[campaign][name] for name in counts}
        assert rates == [
            delivered / attempted if attempted else None,
            read / delivered if delivered else None,
            failed / attempted if attempted else None,
        ]
        assert all(rate is None or 0 <= rate <= 1 for rate in rates)
    # Aivo's hot-sale: 4 attempted, 2 delivered and both read, 2 failed (samples.LIFECYCLES).
    assert by_campaign["hot-sale"][1:] == (4, 2, 2, 2, 0, 0.5, 1.0, 0.5)
