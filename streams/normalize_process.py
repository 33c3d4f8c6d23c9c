"""The normalize stage in a child process of the worker, so that a worker uses a second core.

Normalize is stateless (adapters are pure; its consumer group commits after every output is
acknowledged), so it scales independently of the Faust side, which is single-threaded. The
worker starts the child, tells it through a shared flag whether the Faust side is settled
(tracking must not receive bundles while it rebalances or recovers: see NormalizeLoop), and
restarts it if it dies. The child dies with the worker, even when the worker is SIGKILLed.

The child takes its channels configuration from the worker, never from the file: at start (so
that a child restarted while the file is broken runs with the last good one) and after each
reload the worker applied (through a pipe), from its next batch on.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import multiprocessing
import os
import signal
from multiprocessing.connection import Connection
from typing import ClassVar, Protocol

from pydantic import SecretStr

from schemas.channels import ChannelsConfig
from schemas.errors import ConfigurationError
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


def _take_update(updates: Connection[ChannelsConfig, ChannelsConfig], stage: NormalizeLoop) -> None:
    """A configuration the worker applied: used from the next batch on."""
    try:
        channels: ChannelsConfig = updates.recv()
    except (EOFError, OSError):
        # The worker closed its end: it is stopping (or gone, which the parent watch handles).
        asyncio.get_running_loop().remove_reader(updates.fileno())
        return
    try:
        stage.use(*stage_functions(channels))
    except ConfigurationError:
        # The worker built the same stages before it sent them: this is not expected to happen.
        log.exception("normalize process: reloaded channels not applied, keeping the previous ones")
        return
    log.info("normalize process: reloaded channels in force (%s channels)", len(channels.channels))


async def _run(
    settings: WorkerSettings,
    ready: Flag,
    parent: int,
    channels: ChannelsConfig | None,
    updates: Connection[ChannelsConfig, ChannelsConfig],
) -> None:
    stage = NormalizeLoop(settings, *stage_functions(channels), downstream_ready=lambda: bool(ready.value))
    asyncio.get_running_loop().add_reader(updates.fileno(), _take_update, updates, stage)
    normalize = asyncio.create_task(stage.run())
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


def child_main(
    settings_json: str,
    secrets: dict[str, str],
    ready: Flag,
    parent: int,
    *,
    channels: ChannelsConfig | None,
    updates: Connection[ChannelsConfig, ChannelsConfig],
) -> None:
    """Entry point of the child (spawned: it imports only what it needs)."""
    _die_with_parent()
    settings = settings_in_child(settings_json, secrets)
    logging.basicConfig(level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s %(message)s")
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole group: the worker stops us
    # SIGHUP (a reload asked of the whole group) is the worker's to act on: it sends us the result.
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    install_event_loop(settings.event_loop)
    with contextlib.suppress(asyncio.CancelledError):
        asyncio.run(_run(settings, ready, parent, channels, updates))


class NormalizeProcess:
    """Starts the child, keeps its readiness flag current, restarts it when it exits."""

    #: Children of this process that are running (the recovery watchdog stops them before it
    #: replaces the worker).
    live: ClassVar[set[NormalizeProcess]] = set()

    def __init__(self, settings: WorkerSettings, channels: ChannelsConfig | None = None) -> None:
        self._settings = settings
        self._channels = channels
        self._ctx = multiprocessing.get_context("spawn")
        self.ready: Flag = self._ctx.Value("b", 0, lock=False)
        self._proc: multiprocessing.process.BaseProcess | None = None
        self._updates: Connection[ChannelsConfig, ChannelsConfig] | None = None
        self.restarts = 0

    def start(self) -> None:
        """Spawn the child (again), with the channels configuration in force."""
        if self._updates is not None:
            self._updates.close()
        receive, self._updates = self._ctx.Pipe(duplex=False)
        self._proc = self._ctx.Process(
            target=child_main,
            args=(*settings_for_child(self._settings), self.ready, os.getpid()),
            kwargs={"channels": self._channels, "updates": receive},
            name="statusflow-normalize",
            daemon=True,
        )
        self._proc.start()
        receive.close()  # the child holds its own copy
        NormalizeProcess.live.add(self)
        log.info("normalize process started (pid %s)", self._proc.pid)

    def update(self, channels: ChannelsConfig) -> None:
        """A reloaded configuration: to the running child now, to a restarted one at its start."""
        self._channels = channels
        if self._updates is None:
            return
        try:
            self._updates.send(channels)
        except OSError as exc:
            # A child that died meanwhile is restarted by check() with the new configuration.
            log.warning("normalize process: reloaded channels not sent (%r); a restart takes them", exc)

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
        if self._updates is not None:
            self._updates.close()
            self._updates = None
        if proc is None or not proc.is_alive():
            return
        proc.terminate()
        proc.join(timeout_s)
        if proc.is_alive():
            proc.kill()
            proc.join()
