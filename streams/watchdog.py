"""A stalled table recovery restarts the worker.

faust-streaming can hang in recovery after a rebalance under load: the worker waits for
changelog records its consumer never fetches ("No event received for active tp ... since
recovery start") and never becomes ready, while its normalize stage holds new bundles for it.
A fresh start recovers normally, so a worker whose recovery makes no progress for a while
replaces itself (crash-only: the changelog and the committed offsets make this safe).
"""

from __future__ import annotations

import dataclasses
import logging
import os
import sys
import threading
import time
from collections.abc import Hashable
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


def _restart(stall_after_s: float, remaining: dict[str, int]) -> None:
    log.error(
        "table recovery made no progress for %.0fs (remaining %s): restarting the worker", stall_after_s, remaining
    )
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
                _restart(stall_after_s, remaining)

    thread = threading.Thread(target=watch, name="statusflow-recovery-watchdog", daemon=True)
    thread.start()
    return thread
