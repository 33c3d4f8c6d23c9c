"""The consumer kit: decoding, dedupe ids, typed views, the shipped schemas, the Parquet layout."""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import subprocess
import sys
import typing
import zipfile
from collections import Counter
from pathlib import Path

import pytest

from schemas.codec import SCHEMA_NAMES, codec
from statusflow_consumer import (
    DEDUPE_FIELDS,
    TOPIC_SCHEMAS,
    CohortFunnel,
    Decoded,
    Deduper,
    SchemaError,
    decode,
    funnel_key,
    schema_files,
    schema_json,
)
from statusflow_consumer.export import write_part
from statusflow_consumer.parquet import (
    PartFile,
    change_row,
    event_date,
    funnel_row,
    last_exported,
    metric_row,
    to_table,
)
from statusflow_consumer.records import TYPED
from streams.domain.funnel import Cohort, CohortRow, funnel_record
from tests.unit.test_schemas import RECORDS

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("name", SCHEMA_NAMES)
def test_decode_names_the_schema_and_keeps_the_record(name: str) -> None:
    item = decode(codec(name).encode(RECORDS[name]), topic="t", partition=1, offset=7, key=b"k")
    assert (item.schema, item.topic, item.partition, item.offset, item.key) == (name, "t", 1, 7, "k")
    assert item.record == codec(name).decode(codec(name).encode(RECORDS[name]))
    line = json.loads(item.to_json())
    assert line["schema"] == name and line["offset"] == 7


def test_decode_refuses_what_is_not_statusflow() -> None:
    with pytest.raises(SchemaError):
        decode(b'{"json": true}')


def test_raw_bodies_that_are_not_text_survive_as_base64() -> None:
    record = dict(RECORDS["raw_webhook"], body=b"\xff\x00binary")
    line = json.loads(decode(codec("raw_webhook").encode(record)).to_json())
    assert line["body"] == {"base64": "/wBiaW5hcnk="}


def test_dedupe_ids_come_from_the_deterministic_fields_and_drop_repeats() -> None:
    metric = Decoded("metric_window", dict(RECORDS["metric_window"]))
    later = Decoded("metric_window", dict(RECORDS["metric_window"], revision=RECORDS["metric_window"]["revision"] + 1))
    assert metric.dedupe_id == f"metric_window:{metric.record['metric_id']}:{metric.record['revision']}"
    dedupe = Deduper(capacity=2)
    assert dedupe.first_time(metric)
    assert not dedupe.first_time(metric)
    assert dedupe.first_time(later)  # a new revision of the window is news
    bundle = Decoded("status_event_bundle", RECORDS["status_event_bundle"])
    assert bundle.dedupe_id is None and dedupe.first_time(bundle) and dedupe.first_time(bundle)
    assert set(DEDUPE_FIELDS) <= set(SCHEMA_NAMES)


def test_dedupe_memory_is_bounded() -> None:
    dedupe = Deduper(capacity=2)
    a, b, c = (Decoded("alert", dict(RECORDS["alert"], alert_id=i)) for i in "abc")
    assert all(dedupe.first_time(x) for x in (a, b, c))
    assert dedupe.first_time(a)  # forgotten: only the last two ids are kept
    assert not dedupe.first_time(c)


@pytest.mark.parametrize("name", sorted(TYPED))
def test_typed_views_match_the_schemas(name: str) -> None:
    fields = [field["name"] for field in schema_json(name)["fields"]]
    assert list(typing.get_type_hints(TYPED[name])) == fields


def test_every_schema_file_ships_in_the_package() -> None:
    files = schema_files()
    assert set(files) == set(SCHEMA_NAMES)
    for name, file in files.items():
        assert json.loads(file.read_text(encoding="utf-8"))["type"] == "record", name


def test_an_installed_wheel_carries_the_kit_and_its_schemas(tmp_path: Path) -> None:
    """Built and installed apart from the repository: importlib.resources finds every .avsc."""
    # Built from a copy: an in-tree build would leave build/ in the repository.
    source = tmp_path / "source"
    keep = (
        "pyproject.toml",
        "README.md",
        "receiver",
        "streams",
        "schemas",
        "devkit",
        "statusflow_cli",
        "statusflow_consumer",
    )
    source.mkdir()
    for name in keep:
        if (REPO / name).is_dir():
            shutil.copytree(REPO / name, source / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy(REPO / name, source / name)
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "-q",
            "-w",
            str(tmp_path),
            str(source),
        ],
        check=True,
        timeout=300,
        capture_output=True,
    )
    (wheel,) = tmp_path.glob("statusflow-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert {f"schemas/{name}.avsc" for name in SCHEMA_NAMES} <= set(names)
    assert "statusflow_consumer/__init__.py" in names and "statusflow_consumer/py.typed" in names
    site = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(site), str(wheel)],
        check=True,
        timeout=300,
        capture_output=True,
    )
    probe = (
        "import statusflow_consumer as k, schemas;"
        "print(k.__file__); print(schemas.__file__);"
        "print(sorted(k.schema_files()) == sorted(k.schema_json(n)['name'] and n for n in k.schema_files()))"
    )
    env = {**os.environ, "PYTHONPATH": str(site)}
    done = subprocess.run(
        [sys.executable, "-c", probe], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60, check=True
    )
    kit_file, schemas_file, ok = done.stdout.split()
    assert kit_file.startswith(str(site)) and schemas_file.startswith(str(site))
    assert ok == "True"


def test_part_files_are_named_by_partition_and_offsets_and_resume_after_the_highest(tmp_path: Path) -> None:
    part = PartFile("wa.metrics", "2025-06-15", 3, 10, 19)
    path = part.path(tmp_path)
    assert path.relative_to(tmp_path).as_posix() == (
        "topic=wa.metrics/date=2025-06-15/part-0003-00000000000000000010-00000000000000000019.parquet"
    )
    assert last_exported(tmp_path, "wa.metrics", 3) is None
    for first, last, date in [(0, 9, "2025-06-14"), (10, 19, "2025-06-15")]:
        target = PartFile("wa.metrics", date, 3, first, last).path(tmp_path)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(b"")
    (path.parent / ".part-0003-x.parquet.tmp").write_bytes(b"")
    assert last_exported(tmp_path, "wa.metrics", 3) == 19
    assert last_exported(tmp_path, "wa.metrics", 2) is None


def test_rows_fit_the_parquet_tables_and_dates_follow_event_time() -> None:
    change = decode(codec("status_change").encode(RECORDS["status_change"]), topic="t", partition=0, offset=5)
    metric = decode(codec("metric_window").encode(RECORDS["metric_window"]), topic="t", partition=1, offset=6)
    changes = to_table("status_change", [change_row(change)])
    metrics = to_table("metric_window", [metric_row(metric)])
    assert changes.num_rows == metrics.num_rows == 1
    row = metrics.to_pylist()[0]
    assert row["sent"] == RECORDS["metric_window"]["transitions"]["sent"]
    assert row["kafka_offset"] == 6
    times = [t for k, t in RECORDS["status_change"].items() if k.endswith("_at") and t is not None]
    assert event_date(change) == _day(max(times))
    assert event_date(metric) == _day(RECORDS["metric_window"]["window_start"])


def _day(millis: int) -> str:
    return dt.datetime.fromtimestamp(millis / 1000, tz=dt.UTC).date().isoformat()


def test_the_funnel_topic_maps_to_its_typed_schema_and_dedupes_by_revision() -> None:
    assert TOPIC_SCHEMAS["funnel"] == "cohort_funnel"
    assert set(TOPIC_SCHEMAS.values()) <= set(SCHEMA_NAMES)
    record: CohortFunnel = codec("cohort_funnel").decode(codec("cohort_funnel").encode(RECORDS["cohort_funnel"]))
    item = decode(codec("cohort_funnel").encode(record))
    assert item.dedupe_id == f"cohort_funnel:{record['funnel_id']}:{record['revision']}"
    assert funnel_key(record) == "aivo:default#c-42@1750028400000"
    assert funnel_key({**record, "campaign": None}) == "aivo:default@1750028400000"


def test_funnel_rows_fit_their_parquet_table_and_file_by_cohort_start() -> None:
    encoded = codec("cohort_funnel").encode(RECORDS["cohort_funnel"])
    keyed = decode(encoded, topic="wa.funnel", partition=2, offset=9, key=b"aivo:default#c-42@1750028400000")
    unkeyed = decode(encoded, topic="wa.funnel", partition=2, offset=10)
    rows = to_table("cohort_funnel", [funnel_row(keyed), funnel_row(unkeyed)]).to_pylist()
    assert rows[0]["funnel_key"] == rows[1]["funnel_key"] == "aivo:default#c-42@1750028400000"
    row = rows[0]
    for name in ("funnel_id", "revision", "attempted", "delivered", "read", "failed", "pending", "delivery_rate"):
        assert row[name] == RECORDS["cohort_funnel"][name], name
    assert row["sent_to_delivered"] == RECORDS["cohort_funnel"]["sent_to_delivered"]
    assert row["sent_to_delivered_p50_ms"] == 1_000 and row["kafka_offset"] == 9
    assert row["cohort_start"] == dt.datetime(2025, 6, 15, 23, 0, tzinfo=dt.UTC)
    assert event_date(keyed) == _day(RECORDS["cohort_funnel"]["cohort_start"]) == "2025-06-15"


def _funnel_items(revisions: list[tuple[Cohort, Counter[str], int]]) -> list[Decoded]:
    """CohortFunnel records as the worker publishes them, decoded at successive offsets."""
    items = []
    for offset, (cohort, counts, revision) in enumerate(revisions):
        record = funnel_record(CohortRow(cohort, counts, revision), 3_600_000)
        items.append(decode(codec("cohort_funnel").encode(record), partition=0, offset=offset, key=cohort.key.encode()))
    return items


def test_the_duckdb_example_rates_each_campaigns_day_on_the_last_revision_of_each_cohort(tmp_path: Path) -> None:
    from examples.analytics import campaign_rates

    t0 = 1_750_028_400_000  # 2025-06-15 23:00 UTC
    hot, hot_later = Cohort("aivo", "main", "hot", t0), Cohort("aivo", "main", "hot", t0 + 3_600_000)
    c77 = Cohort("wpp", "main", "c-77", t0)
    revisions = [
        (hot, Counter(attempted=10, sent=10), 0),
        (hot, Counter(attempted=10, delivered=6, read=1, sent=4), 1),
        # The last revision: 10 attempted, 8 delivered (2 by a read), 6 read, 2 failed.
        (hot, Counter(attempted=10, delivered=8, delivered_implied=2, read=6, failed=2), 2),
        (hot, Counter(attempted=10, delivered=8, delivered_implied=2, read=6, failed=2), 2),  # a repeat
        (hot_later, Counter(attempted=4, delivered=4, read=4), 0),  # the next day (UTC)
        (c77, Counter(attempted=2, queued=2), 0),
        (Cohort("aivo", "main", None, t0), Counter(attempted=99, delivered=99), 5),  # channel scope
    ]
    items = _funnel_items(revisions)
    # Two files of one partition, as the export writes them.
    write_part(
        tmp_path, PartFile("wa.funnel", "2025-06-15", 0, 0, 3), "cohort_funnel", [funnel_row(i) for i in items[:4]]
    )
    write_part(tmp_path, PartFile("wa.funnel", "2025-06-16", 0, 4, 4), "cohort_funnel", [funnel_row(items[4])])
    write_part(
        tmp_path, PartFile("wa.funnel", "2025-06-15", 0, 5, 6), "cohort_funnel", [funnel_row(i) for i in items[5:]]
    )

    rows = {(campaign, str(day)): rest for campaign, day, *rest in campaign_rates(tmp_path)}
    assert rows == {
        ("c-77", "2025-06-15"): [2, 0, 0, 0, 2, 0.0, None, 0.0],
        ("hot", "2025-06-15"): [10, 8, 6, 2, 0, 0.8, 0.75, 0.2],
        ("hot", "2025-06-16"): [4, 4, 4, 0, 0, 1.0, 1.0, 0.0],
    }
    assert all(rate is None or 0 <= rate <= 1 for rest in rows.values() for rate in rest[5:])
