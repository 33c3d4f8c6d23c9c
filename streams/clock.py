"""The worker's clock: the wiring reads it and hands the time to the pure core (streams/core/)."""

from __future__ import annotations

import time


def now_ms() -> int:
    """Wall-clock epoch milliseconds."""
    return int(time.time() * 1000)
