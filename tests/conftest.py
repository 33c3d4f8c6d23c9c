"""Shared fixtures: the real broker for the session, unique topics and ids per test; markers by directory."""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import Generator, Iterator
from pathlib import Path

import pytest
from hypothesis import settings

from devkit import kafka_local
from schemas.settings import KafkaSettings, TopicNames

# A shared 2-core machine stalls now and then: a per-example deadline would fail property
# tests for the machine's sake, not the code's. Example counts stay as each test sets them.
settings.register_profile("statusflow", deadline=None)
settings.load_profile("statusflow")


TESTS = Path(__file__).resolve().parent
# A test's markers follow its directory (registered in pyproject.toml); fault tests need the broker too.
DIRECTORY_MARKERS = {"unit": ("unit",), "integration": ("integration",), "chaos": ("chaos", "integration")}


@pytest.hookimpl(tryfirst=True)  # before `-m` deselects by marker
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark each test by where it lives: tests/unit, tests/integration, tests/chaos."""
    for item in items:
        path = item.path.resolve()
        if path.is_relative_to(TESTS):
            for marker in DIRECTORY_MARKERS.get(path.relative_to(TESTS).parts[0], ()):
                item.add_marker(marker)


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Keep each phase's report on the item, so fixtures can tell whether the test failed
    (the worker and chaos fixtures print their processes' logs when it did)."""
    report = yield
    setattr(item, f"report_{report.when}", report)
    return report


@pytest.fixture(scope="session")
def kafka_bootstrap() -> Iterator[str]:
    """KAFKA_BOOTSTRAP_SERVERS when set, else a real local broker started for this session."""
    external = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    if external:
        yield external
        return
    data_dir = Path(tempfile.mkdtemp(prefix="statusflow-kafka-"))
    broker = kafka_local.start(port=kafka_local.free_port(), data_dir=data_dir, timeout=180)
    try:
        yield broker.bootstrap
    finally:
        broker.stop()
        shutil.rmtree(data_dir, ignore_errors=True)


@pytest.fixture
def unique_id() -> str:
    """A short id unique to this test, for topic prefixes, app ids and groups."""
    return uuid.uuid4().hex[:10]


@pytest.fixture
def kafka_settings(kafka_bootstrap: str, unique_id: str) -> KafkaSettings:
    """Settings whose topics belong to this test alone."""
    return KafkaSettings(
        bootstrap_servers=kafka_bootstrap,
        topics=TopicNames().prefixed(f"t{unique_id}."),
        partitions=4,
    )
