"""Real processes for integration tests: workers (`python -m streams`) and the receiver app."""

from __future__ import annotations

import dataclasses
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest
from aiohttp.test_utils import TestServer

from devkit.kafka_local import free_port
from receiver.app import create_app
from receiver.settings import ReceiverSettings
from schemas.settings import KafkaSettings
from schemas.topics import ensure_topics

REPO = Path(__file__).resolve().parents[2]


@dataclasses.dataclass
class WorkerProcess:
    """A running worker and where to reach it."""

    proc: subprocess.Popen[bytes]
    url: str
    log: Path

    def kill(self) -> None:
        """SIGKILL: no shutdown, no flush, no commit."""
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=30)

    def stop(self) -> None:
        """SIGTERM, then SIGKILL if it does not stop."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def log_tail(self, lines: int = 40) -> str:
        """The end of the worker's log, for failure messages."""
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])

    def log_story(self, limit: int = 400) -> str:
        """The log lines that tell what the worker went through (assignments, recovery,
        warnings, errors), then its end: a failure in CI can only be read from these."""
        lines = self.log.read_text(errors="replace").splitlines()
        story = [line for line in lines if any(word in line for word in _STORY_WORDS)]
        return "\n".join([*story[:limit], "  ...", *lines[-60:]])


# Words of the lines worth printing when a test fails: Faust's and our own state changes.
_STORY_WORDS = ("WARN", "ERROR", "CRIT", "ssign", "evoke", "ecover", "ebalanc", "normalize", "Traceback", "Error")


WorkerFactory = Callable[..., WorkerProcess]


@pytest.fixture
def start_worker(
    kafka_settings: KafkaSettings, unique_id: str, tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[WorkerFactory]:
    """Start workers on this test's topics and app id; all are stopped at the end, and when the
    test failed their logs' ends are printed (CI shows only what pytest prints)."""
    started: list[WorkerProcess] = []

    def factory(name: str = "w", **env_overrides: str) -> WorkerProcess:
        port = free_port()
        env = {
            **os.environ,
            "KAFKA_BOOTSTRAP_SERVERS": kafka_settings.bootstrap_servers,
            "STATUSFLOW_APP_ID": f"statusflow-{unique_id}",
            # A recovery hang of faust-streaming heals by the worker's own restart (streams/faust_ext/watchdog.py):
            # sooner than production's 90 s, within the tests' deadlines.
            "STATUSFLOW_RECOVERY_STALL_S": "20",
            "STATUSFLOW_WEB_PORT": str(port),
            "STATUSFLOW_DATA_DIR": str(tmp_path / f"worker-{name}"),
            "STATUSFLOW_PARTITIONS": str(kafka_settings.partitions),
            **{f"STATUSFLOW_TOPIC_{k.upper()}": v for k, v in kafka_settings.topics.model_dump().items()},
            **env_overrides,
        }
        log_path = tmp_path / f"worker-{name}-{len(started)}.log"
        with log_path.open("wb") as log_file:
            log_file.write(f"test harness: worker {name} on http://127.0.0.1:{port}\n".encode())
            log_file.flush()
            proc = subprocess.Popen(
                [sys.executable, "-m", "streams"], cwd=REPO, env=env, stdout=log_file, stderr=log_file
            )
        worker = WorkerProcess(proc=proc, url=f"http://127.0.0.1:{port}", log=log_path)
        started.append(worker)
        return worker

    yield factory
    for worker in started:
        worker.stop()
    report = getattr(request.node, "report_call", None)
    if report is not None and report.failed:
        for worker in started:
            print(f"\n----- {worker.log.name} -----\n{worker.log_story()}")  # noqa: T201 - shown by pytest on failure


@pytest.fixture
async def receiver_url(kafka_settings: KafkaSettings, tmp_path: Path) -> AsyncIterator[str]:
    """The real receiver app with its real Kafka producer, on a loopback port, its own spool."""
    await ensure_topics(kafka_settings)
    settings = ReceiverSettings(**kafka_settings.model_dump(), spool_dir=tmp_path / "spool")
    server = TestServer(create_app(settings), host="127.0.0.1")
    await server.start_server()
    try:
        yield str(server.make_url("")).rstrip("/")
    finally:
        await server.close()
