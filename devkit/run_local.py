"""`make run`: the local broker, the receiver, one worker, the dashboard and (when a sink is configured)
the notifier, until Ctrl-C stops all of it."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from devkit import kafka_local

REPO = Path(__file__).resolve().parent.parent

# Any of these configures a notifier sink (or its routes): then `make run` starts the notifier too.
NOTIFY_VARIABLES = (
    "STATUSFLOW_NOTIFY_WEBHOOK_URL",
    "STATUSFLOW_NOTIFY_ALERTMANAGER_URL",
    "STATUSFLOW_NOTIFY_SMTP_HOST",
    "STATUSFLOW_NOTIFY_FILE",
)


def wants_notifier(env: dict[str, str]) -> bool:
    """A sink is configured."""
    return any(env.get(name) for name in NOTIFY_VARIABLES)


def _wait_http(url: str, proc: subprocess.Popen[bytes], timeout: float) -> None:
    """Poll `url` until it answers 200, failing fast if `proc` exits."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            msg = f"{proc.args!r} exited with {proc.returncode} before {url} answered"
            raise SystemExit(msg)
        with (
            contextlib.suppress(urllib.error.URLError, ConnectionError, TimeoutError),
            urllib.request.urlopen(url, timeout=1) as response,  # noqa: S310 - a loopback URL we built
        ):
            if response.status == 200:
                return
        time.sleep(0.2)
    msg = f"{url} did not answer within {timeout:.0f}s"
    raise SystemExit(msg)


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _watch(procs: list[subprocess.Popen[bytes]]) -> None:
    """Until Ctrl-C or SIGTERM; a child that dies ends the run (its log says why)."""
    # Installed explicitly: a shell without job control starts background commands with
    # SIGINT ignored, and Python keeps that disposition.
    signal.signal(signal.SIGINT, _interrupt)
    signal.signal(signal.SIGTERM, _interrupt)
    while True:
        for proc in procs:
            if proc.poll() is not None:
                _say(f"{proc.args!r} exited with {proc.returncode}; see its log")
                return
        time.sleep(0.5)


def _say(text: str) -> None:
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def _interrupted(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main() -> int:
    """Start everything, print where to POST, wait for Ctrl-C, stop everything."""
    # SIGTERM (a supervisor, `timeout`, `kill`) stops everything too, like Ctrl-C; by default it
    # ended this process at once and left the broker running.
    signal.signal(signal.SIGTERM, _interrupted)
    port = int(os.environ.get("STATUSFLOW_KAFKA_PORT", "9092"))
    # Everything the run keeps (broker data, worker store, spool, logs) lives under one directory.
    local = Path(os.environ.get("STATUSFLOW_LOCAL_DIR", str(REPO / ".local")))
    started = time.monotonic()
    broker = kafka_local.start(port=port, data_dir=local / f"kafka-{port}")
    _say(f"broker   ready on {broker.bootstrap} in {time.monotonic() - started:.1f}s")
    env = {**os.environ, "KAFKA_BOOTSTRAP_SERVERS": broker.bootstrap}
    receiver_port = env.setdefault("STATUSFLOW_PORT", "8080")
    worker_port = env.setdefault("STATUSFLOW_WEB_PORT", "6066")
    host = env.setdefault("STATUSFLOW_HOST", "127.0.0.1")
    dashboard_port = env.setdefault("STATUSFLOW_DASHBOARD_PORT", "8090")
    dashboard_host = env.setdefault("STATUSFLOW_DASHBOARD_HOST", "127.0.0.1")
    env.setdefault("STATUSFLOW_DASHBOARD_RECEIVER_METRICS", f"http://{host}:{receiver_port}/metrics")
    env.setdefault("STATUSFLOW_DATA_DIR", str(local / "worker"))
    env.setdefault("STATUSFLOW_SPOOL_DIR", str(local / "receiver-spool"))
    logs = local / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    procs: list[subprocess.Popen[bytes]] = []
    try:
        for name in ("receiver", "streams", "dashboard"):
            with (logs / f"{name}.log").open("ab") as log_file:
                procs.append(
                    subprocess.Popen(  # noqa: S603 - our own modules, run by this interpreter
                        [sys.executable, "-m", name], cwd=REPO, env=env, stdout=log_file, stderr=log_file
                    )
                )
        _wait_http(f"http://{host}:{receiver_port}/healthz", procs[0], 60)
        _say(f"receiver ready on http://{host}:{receiver_port}  (log: {logs / 'receiver.log'})")
        _wait_http(f"http://{host}:{worker_port}/healthz", procs[1], 120)
        _say(f"worker   ready on http://{host}:{worker_port}  (log: {logs / 'streams.log'})")
        _wait_http(f"http://{dashboard_host}:{dashboard_port}/healthz", procs[2], 60)
        _say(f"dashboard ready on http://{dashboard_host}:{dashboard_port}/  (log: {logs / 'dashboard.log'})")
        if wants_notifier(env):
            notify_port = env.setdefault("STATUSFLOW_NOTIFY_PORT", "8095")
            with (logs / "notifier.log").open("ab") as log_file:
                procs.append(
                    subprocess.Popen(
                        [sys.executable, "-m", "notifier"], cwd=REPO, env=env, stdout=log_file, stderr=log_file
                    )
                )
            _wait_http(f"http://127.0.0.1:{notify_port}/healthz", procs[-1], 60)
            _say(f"notifier ready on http://127.0.0.1:{notify_port}/metrics  (log: {logs / 'notifier.log'})")
        _say(
            f"\nPOST webhooks to  http://{host}:{receiver_port}/webhooks/<provider>[/<channel>]   e.g.\n"
            "  curl -X POST -H 'content-type: application/json' "
            f"--data @tests/fixtures/meta/status_sent.json http://{host}:{receiver_port}/webhooks/meta\n"
            f"then query        http://{host}:{worker_port}/messages/meta/<message id>\n"
            f"and watch         http://{dashboard_host}:{dashboard_port}/  (sample traffic: statusflow demo)\n"
            "DEVELOPMENT MODE: unsigned webhooks from loopback are accepted; set provider secrets to verify.\n"
            "Ctrl-C stops receiver, worker, dashboard and broker."
        )
        _watch(procs)
    except KeyboardInterrupt:
        pass
    finally:
        _say("stopping...")
        for proc in procs:
            proc.send_signal(signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
        broker.stop()
        _say("stopped")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
