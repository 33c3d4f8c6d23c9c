"""A stalled table recovery, or agents that stopped taking records, restart the worker.

faust-streaming can hang in recovery after a rebalance under load: the worker waits for
changelog records its consumer never fetches ("No event received for active tp ... since
recovery start") and never becomes ready, while its normalize stage holds new bundles for it.
A fresh start recovers normally, so a worker whose recovery makes no progress for a while
replaces itself (crash-only: the changelog and the committed offsets make this safe).
The same holds for a worker whose agents stop taking records after recovery (`HangWatch`).

Corrects faust-streaming 0.15.3 (the release streams/faust_ext/faust_version.py requires), reading its
`TableManager.recovery` (`in_recovery`, `active_offsets`, `active_remaining`). Upstream: the
recovery hang is faust-streaming issue #432 ("Still fetching changelog topics for recovery",
open) and #176 (the same "No event received for active tp" message, open); agents that stop
consuming, `HangWatch`'s case, are #175 and #640 (both open). Why: docs/architecture.md.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import os
import sys
import threading
import time
from collections.abc import Hashable, Mapping
from typing import cast

import faust
from faust.tables.manager import TableManager

from streams.normalize_process import NormalizeProcess

log = logging.getLogger(__name__)


@dataclasses.dataclass
class StallDetector:
    """Says when recovery has been in progress without moving for `stall_after_s` seconds."""

    stall_after_s: float
    _progress: Hashable = None
    _since: float | None = None

    def stalled(self, now: float, *, recovering: bool, progress: Hashable) -> bool:
        """Feed one observation: whether recovery is running and how far it is (any snapshot
        that changes when it moves, e.g. the changelog offsets it has applied)."""
        if not recovering:
            self._since = None
            return False
        if self._since is None or progress != self._progress:
            self._since, self._progress = now, progress
            return False
        return now - self._since >= self.stall_after_s


@dataclasses.dataclass
class NoProgress:
    """Counts consecutive observations in which something had work and did not move.

    Counted in observations, not seconds: a process stopped by SIGSTOP (or a host that slept)
    wakes to a long gap between two observations, and that gap is no evidence of a hang; only
    observations that keep seeing no progress after it are.
    """

    needed: int
    _progress: Hashable = None
    _unmoved: int = -1

    def observe(self, *, busy: bool, progress: Hashable) -> bool:
        """Feed one observation; True once `needed` observations in a row saw no progress."""
        if not busy or self._unmoved < 0 or progress != self._progress:
            self._progress, self._unmoved = progress, 0 if busy else -1
            return False
        self._unmoved += 1
        return self._unmoved >= self.needed


class HangWatch:
    """Says when the worker's agents stopped taking records while the process stays alive.

    faust-streaming agents can stop consuming for good while the worker looks healthy
    (faust-streaming issues 175, 229 and 640; seen once in this project's fault runs): records
    wait on partitions this worker owns, nothing processes them, and re-reading them (the
    stalled-partition repair, streams/faust_ext/stalls.py) does not help because nothing reads the
    stream. Two signs are watched:

    * a partition assigned to this worker with records behind its committed offset, none of
      which is processed for `hang_after_s` (fed by the lag timer with the consumer's counts);
    * the event loop itself no longer running its timers for `hang_after_s` (a call that
      blocks forever), seen from the watchdog thread through a heartbeat.

    Either way the worker replaces itself, as it does for a stalled recovery: the changelog
    and the committed offsets make a restart safe.
    """

    def __init__(self, hang_after_s: float, interval_s: float, beat_every_s: float = 1.0) -> None:
        self.hang_after_s = hang_after_s
        self._partitions_needed = max(1, math.ceil(hang_after_s / interval_s))
        self._partitions: dict[Hashable, NoProgress] = {}
        self._beats = 0
        self.beat_every_s = beat_every_s
        self._loop = NoProgress(max(1, math.ceil(hang_after_s / interval_s)))
        self.hung: str | None = None

    def beat(self) -> None:
        """Called by a timer of the event loop: the loop runs."""
        self._beats += 1

    def forget_partitions(self) -> None:
        """A rebalance or recovery moves positions: the partitions are watched afresh after it."""
        self._partitions = {}

    def observe_partitions(self, behind: Mapping[Hashable, int], processed: Mapping[Hashable, int]) -> None:
        """One lag measurement of this worker's partitions: records behind and processed so far."""
        watched: dict[Hashable, NoProgress] = {}
        for tp, waiting in behind.items():
            detector = self._partitions.get(tp) or NoProgress(self._partitions_needed)
            watched[tp] = detector
            if detector.observe(busy=waiting > 0, progress=processed.get(tp, 0)) and self.hung is None:
                self.hung = (
                    f"{tp}: {waiting} records waiting and none processed for {self.hang_after_s:.0f}s "
                    "(the agents stopped taking records)"
                )
        self._partitions = watched

    def check_loop(self) -> str | None:
        """From the watchdog thread, every `interval_s`: why the worker hangs, if it does."""
        # The heartbeat starts with Faust's timers (after the first recovery, which the recovery
        # watchdog covers): before its first beat the loop is not watched.
        if self._loop.observe(busy=self._beats > 0, progress=self._beats) and self.hung is None:
            self.hung = f"the event loop ran no timer for {self.hang_after_s:.0f}s (a call blocks it)"
        return self.hung


def _snapshot(app: faust.App) -> tuple[bool, Hashable, dict[str, int]]:
    recovery = cast(TableManager, app.tables).recovery
    for _ in range(3):  # the event loop's thread may be changing the offsets as we read them
        try:
            offsets = tuple(sorted((str(tp), offset) for tp, offset in recovery.active_offsets.items()))
            remaining = {str(tp): n for tp, n in recovery.active_remaining().items()}
            return bool(recovery.in_recovery), offsets, remaining
        except RuntimeError:
            continue
    return bool(recovery.in_recovery), None, {}


def _restart(why: str) -> None:
    log.error("%s: restarting the worker", why)
    for child in list(NormalizeProcess.live):
        child.stop()
    logging.shutdown()
    # Same pid, arguments and environment: a supervisor (or a test) still sees its process.
    os.execv(sys.executable, [sys.executable, *sys.orig_argv[1:]])  # noqa: S606 - our own command line


def start_recovery_watchdog(app: faust.App, stall_after_s: float, interval_s: float = 5.0) -> threading.Thread:
    """Watch recovery from a thread: Faust starts the app's timers and services only once the
    first recovery is over, and a hang in that one must be caught too."""
    detector = StallDetector(stall_after_s)

    def watch() -> None:
        while True:
            time.sleep(interval_s)
            recovering, progress, remaining = _snapshot(app)
            if detector.stalled(time.monotonic(), recovering=recovering, progress=progress):
                _restart(f"table recovery made no progress for {stall_after_s:.0f}s (remaining {remaining})")

    thread = threading.Thread(target=watch, name="statusflow-recovery-watchdog", daemon=True)
    thread.start()
    return thread


def start_hang_watchdog(watch: HangWatch, interval_s: float) -> threading.Thread:
    """Check `watch` from a thread: a blocked event loop cannot restart its own process."""

    def check() -> None:
        while True:
            time.sleep(interval_s)
            why = watch.check_loop()
            if why is not None:
                _restart(why)

    thread = threading.Thread(target=check, name="statusflow-hang-watchdog", daemon=True)
    thread.start()
    return thread
