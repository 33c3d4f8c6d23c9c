"""The normalize stage in a child process of the worker, so that a worker uses a second core.

Normalize is stateless (adapters are pure; its consumer group commits after every output is
acknowledged), so it scales independently of the Faust side, which is single-threaded. The
worker starts the child, tells it through a shared flag whether the Faust side is settled
(tracking must not receive bundles while it rebalances or recovers: see NormalizeLoop), and
restarts it if it dies. The child dies with the worker, even when the worker is SIGKILLed.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import multiprocessing
import os
import signal
from typing import ClassVar, Protocol

from pydantic import SecretStr

from schemas.channels import load_channels
from schemas.event_loop import install_event_loop
from streams.normalize_loop import NormalizeLoop
from streams.settings import WorkerSettings
from streams.stages import stage_functions

log = logging.getLogger(__name__)

_PR_SET_PDEATHSIG = 1


class Flag(Protocol):
    """A shared byte (multiprocessing Value)."""

    value: int


def _die_with_parent() -> None:
    """Ask Linux to SIGKILL this process when its parent dies (no orphaned consumer)."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):  # not Linux: the parent watch below still applies
        log.debug("prctl(PR_SET_PDEATHSIG) unavailable")


async def _run(settings: WorkerSettings, ready: Flag, parent: int) -> None:
    channels = load_channels(settings.channels_file, os.environ) if settings.channels_file else None
    accept, resolve = stage_functions(channels)
    normalize = asyncio.create_task(
        NormalizeLoop(settings, accept, resolve, downstream_ready=lambda: bool(ready.value)).run()
    )
    # SIGTERM (the worker stopping us): leave the consumer group cleanly, so its partitions move now.
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, normalize.cancel)
    # Belt and braces for systems without PR_SET_PDEATHSIG: leave when re-parented.
    while not normalize.done():
        if os.getppid() != parent:
            log.error("normalize process: the worker is gone, stopping")
            normalize.cancel()
            break
        await asyncio.wait({normalize}, timeout=1.0)
    await normalize


def settings_for_child(settings: WorkerSettings) -> tuple[str, dict[str, str]]:
    """The settings as JSON plus their secrets apart: JSON writes a SecretStr as `**********`."""
    secrets = {name: value.get_secret_value() for name, value in settings if isinstance(value, SecretStr)}
    return settings.model_dump_json(), secrets


def settings_in_child(settings_json: str, secrets: dict[str, str]) -> WorkerSettings:
    """The parent's settings, secrets included (e.g. the recipient hash key)."""
    settings = WorkerSettings.model_validate_json(settings_json)
    return settings.model_copy(update={name: SecretStr(value) for name, value in secrets.items()})


def child_main(settings_json: str, secrets: dict[str, str], ready: Flag, parent: int) -> None:
    """Entry point of the child (spawned: it imports only what it needs)."""
    _die_with_parent()
    settings = settings_in_child(settings_json, secrets)
    logging.basicConfig(level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s %(message)s")
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole group: the worker stops us
    install_event_loop(settings.event_loop)
    with contextlib.suppress(asyncio.CancelledError):
        asyncio.run(_run(settings, ready, parent))


class NormalizeProcess:
    """Starts the child, keeps its readiness flag current, restarts it when it exits."""

    #: Children of this process that are running (the recovery watchdog stops them before it
    #: replaces the worker).
    live: ClassVar[set[NormalizeProcess]] = set()

    def __init__(self, settings: WorkerSettings) -> None:
        self._settings = settings
        self._ctx = multiprocessing.get_context("spawn")
        self.ready: Flag = self._ctx.Value("b", 0, lock=False)
        self._proc: multiprocessing.process.BaseProcess | None = None
        self.restarts = 0

    def start(self) -> None:
        """Spawn the child (again)."""
        self._proc = self._ctx.Process(
            target=child_main,
            args=(*settings_for_child(self._settings), self.ready, os.getpid()),
            name="statusflow-normalize",
            daemon=True,
        )
        self._proc.start()
        NormalizeProcess.live.add(self)
        log.info("normalize process started (pid %s)", self._proc.pid)

    def check(self, downstream_ready: bool) -> None:
        """Publish readiness; restart a child that exited (it resumes from its committed offsets)."""
        self.ready.value = int(downstream_ready)
        if self._proc is not None and not self._proc.is_alive():
            log.error("normalize process exited with %s; restarting it", self._proc.exitcode)
            self.restarts += 1
            self.start()

    def stop(self, timeout_s: float = 10.0) -> None:
        """SIGTERM, then SIGKILL if it does not leave."""
        proc, self._proc = self._proc, None
        NormalizeProcess.live.discard(self)
        if proc is None or not proc.is_alive():
            return
        proc.terminate()
        proc.join(timeout_s)
        if proc.is_alive():
            proc.kill()
            proc.join()
