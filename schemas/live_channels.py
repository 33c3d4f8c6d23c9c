"""The channels configuration of a running process, reloaded when the file changes or on SIGHUP.

The receiver and the stream worker hold one `LiveChannels` each. Its `current` configuration is
one immutable ChannelsConfig, replaced whole by a reload: a request or a batch reads it once
and finishes with what it read, so nothing ever sees half of an old and half of a new file.
A file that does not load (bad TOML or YAML, a validation error, a check of the process that
fails) changes nothing: the last good configuration stays, the error is logged with the file,
channel and field it names, and the process's `statusflow_config_*` metrics say so (an alert
rule in deploy/prometheus watches them).

Two triggers, both cheap and portable: a poll of the file's stat every `channels_poll_s`
(ChangeDetector decides when it changed and settled) and SIGHUP, which reads it at once.
What decides is pure (schemas/channel_changes.py); this module is the I/O around it.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import hashlib
import logging
import signal
import time
from collections.abc import AsyncIterator, Callable, Mapping
from pathlib import Path

from prometheus_client import CollectorRegistry, Counter, Gauge

from schemas.channel_changes import ChangeDetector, FileStamp, diff_configs
from schemas.channels import ChannelsConfig, load_channels
from schemas.errors import ConfigurationError

log = logging.getLogger(__name__)

#: Attempts at reading a file that changes while it is read, before the poll tries again.
READ_ATTEMPTS = 3

Listener = Callable[[ChannelsConfig], None]
Check = Callable[[ChannelsConfig], object]


@dataclasses.dataclass(frozen=True)
class ReloadMetrics:
    """Per process: how its channels file loads (the same names in the receiver and the worker)."""

    failures: Counter
    last_success: Gauge
    last_success_time: Gauge
    channels: Gauge

    @classmethod
    def register(cls, registry: CollectorRegistry) -> ReloadMetrics:
        """The instruments, in the process's own registry."""
        return cls(
            failures=Counter(
                "statusflow_config_reload_failures",
                "Reloads of the channels file that were refused (the last good configuration stayed).",
                registry=registry,
            ),
            last_success=Gauge(
                "statusflow_config_last_reload_success",
                "1 when the last reading of the channels file was applied, 0 when it was refused.",
                registry=registry,
            ),
            last_success_time=Gauge(
                "statusflow_config_last_reload_success_timestamp_seconds",
                "When the configuration in force was loaded (start-up or last applied reload).",
                registry=registry,
            ),
            channels=Gauge("statusflow_config_channels", "Channels in the configuration in force.", registry=registry),
        )

    def applied(self, config: ChannelsConfig, at: float) -> None:
        """A configuration is in force since `at`."""
        self.last_success.set(1)
        self.last_success_time.set(at)
        self.channels.set(len(config.channels))

    def refused(self) -> None:
        """A reading of the file was refused."""
        self.failures.inc()
        self.last_success.set(0)


def file_stamp(path: Path) -> FileStamp | None:
    """The file's stamp, None when it cannot be stat'ed (missing, or no permission)."""
    try:
        st = path.stat()
    except OSError:
        return None
    return FileStamp(inode=st.st_ino, size=st.st_size, mtime_ns=st.st_mtime_ns, ctime_ns=st.st_ctime_ns)


def _digest(path: Path) -> str:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError as exc:
        msg = f"{path}: cannot read the channels file: {exc.strerror or exc}"
        raise ConfigurationError(msg) from exc


def read_channels(path: Path, environ: Mapping[str, str]) -> tuple[str, ChannelsConfig]:
    """(content digest, configuration) of one consistent reading of the file.

    The file is hashed before and after it is parsed: a file rewritten in between is read again,
    so that the digest in force is always that of the content in force.
    """
    for _ in range(READ_ATTEMPTS):
        before = _digest(path)
        config = load_channels(path, environ)
        if _digest(path) == before:
            return before, config
    msg = f"{path}: the channels file kept changing while it was read"
    raise ConfigurationError(msg)


class LiveChannels:
    """The configuration in force in this process; `reload` swaps it whole or not at all.

    `checks` refuse a configuration the process could not run with (the worker builds its
    adapters with it); `subscribe` tells others of every configuration applied (the worker's
    normalize stage, in its child process too).
    """

    def __init__(
        self,
        config: ChannelsConfig,
        path: Path | None = None,
        environ: Mapping[str, str] | None = None,
        *,
        digest: str | None = None,
        stamp: FileStamp | None = None,
    ) -> None:
        self._config = config
        self.path = path
        self._environ: Mapping[str, str] = environ if environ is not None else {}
        self._digest = digest
        self.loaded_stamp = stamp
        self.loaded_at = time.time()
        self._checks: list[Check] = []
        self._listeners: list[Listener] = []
        self._metrics: ReloadMetrics | None = None
        self._refused: str | None = None  # why the last reading was refused, until one loads

    @classmethod
    def load(cls, path: Path, environ: Mapping[str, str]) -> LiveChannels:
        """Read the file at start-up; ConfigurationError (file, channel, field) when it does not load."""
        stamp = file_stamp(path)  # before reading: a write meanwhile is then seen as a change
        digest, config = read_channels(path, environ)
        return cls(config, path, environ, digest=digest, stamp=stamp)

    @property
    def current(self) -> ChannelsConfig:
        """The configuration in force: read it once per request or batch, and keep what was read."""
        return self._config

    def add_check(self, check: Check) -> None:
        """Refuse configurations that `check` raises ConfigurationError for (the current one must pass)."""
        check(self._config)
        self._checks.append(check)

    def subscribe(self, listener: Listener) -> None:
        """Call `listener` with every configuration applied from now on."""
        self._listeners.append(listener)

    def report_to(self, metrics: ReloadMetrics) -> None:
        """Keep `metrics` current, starting with the configuration in force."""
        self._metrics = metrics
        metrics.applied(self._config, self.loaded_at)

    def reload(self, trigger: str) -> bool:
        """Read the file again; True when a new configuration was applied.

        A file whose content is the one in force is not parsed again when the poll noticed it
        (touched, rewritten the same); SIGHUP always reads, and says when nothing changed.
        """
        if self.path is None:
            return False
        forced = trigger == "SIGHUP"
        try:
            digest, candidate = read_channels(self.path, self._environ)
            if digest == self._digest and not forced:
                self._back_to_good()
                return False
            for check in self._checks:
                check(candidate)
        except ConfigurationError as exc:
            # Errors of the file name it; a check's (the worker's adapters) names only the channel.
            reason = str(exc) if str(exc).startswith(str(self.path)) else f"{self.path}: {exc}"
            self._refuse(trigger, reason)
            return False
        diff = diff_configs(self._config, candidate)
        self._back_to_good()
        if diff.empty:
            self._digest = digest  # comments or layout only
            log.info("channels file %s read again (%s): no change", self.path, trigger)
            return False
        self._config, self._digest, self.loaded_at = candidate, digest, time.time()
        if self._metrics is not None:
            self._metrics.applied(candidate, self.loaded_at)
        log.info(
            "channels file %s reloaded (%s): %s channels in force; %s",
            self.path,
            trigger,
            len(candidate.channels),
            diff.summary(),
        )
        for listener in self._listeners:
            try:
                listener(candidate)
            except Exception:
                # One listener failing must not keep the others on the old configuration.
                log.exception("channels reload: a listener failed to take the new configuration")
        return True

    def _back_to_good(self) -> None:
        if self._refused is not None:
            log.info("channels file %s loads again", self.path)
        self._refused = None
        if self._metrics is not None:
            self._metrics.last_success.set(1)

    def _refuse(self, trigger: str, reason: str) -> None:
        if self._metrics is not None:
            self._metrics.refused()
        self._refused = reason
        loaded = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.loaded_at))
        log.error(
            "channels file not applied (%s), keeping the configuration loaded at %s: %s",
            trigger,
            loaded,
            reason,
        )


def hold_sighup() -> None:
    """Ignore SIGHUP until `reloading` installs its handler: by default it ends the process, and
    an operator's reload sent while the process starts must not stop it (the file watch still
    sees a change made meanwhile: its first stamp is the one taken when the file was read)."""
    signal.signal(signal.SIGHUP, signal.SIG_IGN)


async def watch(live: LiveChannels, poll_s: float) -> None:
    """Until cancelled: poll the file's stamp and reload once a change has settled."""
    if live.path is None:
        return
    detector = ChangeDetector(live.loaded_stamp)
    while True:
        await asyncio.sleep(poll_s)  # the poll interval, not a synchronisation
        try:
            if detector.observe(file_stamp(live.path)):
                live.reload("file changed")
        except Exception:
            # The watch outlives any surprise: a process that silently stops reloading is worse.
            log.exception("channels watch: reload failed unexpectedly")


@contextlib.asynccontextmanager
async def reloading(live: LiveChannels, poll_s: float, *, sighup: bool) -> AsyncIterator[None]:
    """While inside: the file watch runs (poll_s > 0) and SIGHUP reloads (when `sighup`: the
    process's entry point owns its signals; an app inside a test runner does not)."""
    if live.path is None:
        yield
        return
    loop = asyncio.get_running_loop()
    task = asyncio.create_task(watch(live, poll_s), name="channels-watch") if poll_s > 0 else None
    if sighup:
        loop.add_signal_handler(signal.SIGHUP, live.reload, "SIGHUP")
    triggers = [f"when it changes (checked every {poll_s:g}s)"] if task is not None else []
    triggers += ["on SIGHUP"] if sighup else []
    log.info("channels file %s: reloaded %s", live.path, " and ".join(triggers) or "never (no watch, no SIGHUP)")
    try:
        yield
    finally:
        if sighup:
            loop.remove_signal_handler(signal.SIGHUP)
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
