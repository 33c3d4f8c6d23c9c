"""The asyncio event loop each statusflow process runs on.

uvloop (libuv) runs the same asyncio programs with a cheaper loop: fewer Python frames per
ready callback and per socket write. Under live traffic every process is loop-bound (many small
requests and produce batches), so the choice shows in the full-stack rate (docs/runbook.md,
Sizing). `asyncio` stays available for debugging with the standard loop's tools.
"""

from __future__ import annotations

import asyncio
from typing import Literal

import uvloop

EventLoopKind = Literal["uvloop", "asyncio"]


def install_event_loop(kind: EventLoopKind) -> None:
    """Make `kind` the loop that asyncio.run, aiohttp and Faust create from now on in this process."""
    if kind == "uvloop":
        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    else:
        asyncio.set_event_loop_policy(asyncio.DefaultEventLoopPolicy())
