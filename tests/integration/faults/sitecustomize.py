"""Fault injection for worker processes started by the integration tests (on their PYTHONPATH).

STATUSFLOW_FAULT_SKIP_FIRST_RECORD_OF=<topic>: Faust's consumer hands the first record of that
topic to nothing, then carries on as if it had been delivered. That is what faust-streaming
does when a fetched record reaches a stream during a rebalance (streams/faust_ext/stalls.py): the record
is read, never processed, never acknowledged, and not fetched again.

STATUSFLOW_FAULT_SKIP_FROM_OFFSET=<n> (default 0): skip the first record of that topic whose
offset is at least n instead, so that the skipped record can lie right behind an offset the
worker has committed, with more records after it.

STATUSFLOW_FAULT_DELAY_RECORDS_OF=<topic>:<seconds>: Faust's consumer waits that long before
handing each record of that topic on: a tracking stage that lags behind normalize.

STATUSFLOW_FAULT_HANG_ONCE_ON=<topic>:<marker file>: while the file exists, the first record of
that topic is never handed on, and nothing after it (the file is removed first, so a restarted
worker runs normally): the agents stop taking records while the process and its event loop
stay alive, as faust-streaming's sometimes do (streams/faust_ext/watchdog.py, HangWatch).
"""

from __future__ import annotations

import os

_TOPIC = os.environ.get("STATUSFLOW_FAULT_SKIP_FIRST_RECORD_OF")
_FROM_OFFSET = int(os.environ.get("STATUSFLOW_FAULT_SKIP_FROM_OFFSET", "0"))
_DELAYED_TOPIC, _, _DELAY_S = os.environ.get("STATUSFLOW_FAULT_DELAY_RECORDS_OF", "").rpartition(":")
_HANG_TOPIC, _, _HANG_MARKER = os.environ.get("STATUSFLOW_FAULT_HANG_ONCE_ON", "").partition(":")

if _TOPIC or _DELAYED_TOPIC or _HANG_TOPIC:
    import asyncio
    from collections.abc import Awaitable, Callable
    from pathlib import Path
    from typing import Any

    from faust.transport import conductor

    _compile = conductor.Conductor._compile_message_handler

    def _claim_hang() -> bool:
        """True once: the marker file existed and is now gone."""
        try:
            Path(_HANG_MARKER).unlink()
        except FileNotFoundError:
            return False
        return True

    def _faulty_handler(self: conductor.Conductor) -> Callable[[Any], Awaitable[None]]:
        deliver = _compile(self)
        skipped = False

        async def on_message(message: Any) -> None:
            nonlocal skipped
            if not skipped and message.topic == _TOPIC and message.offset >= _FROM_OFFSET:
                skipped = True
                print(f"fault injection: skipped {message.topic}[{message.partition}]@{message.offset}", flush=True)  # noqa: T201
                return
            if message.topic == _HANG_TOPIC and _claim_hang():
                print(f"fault injection: hangs on {message.topic}[{message.partition}]@{message.offset}", flush=True)  # noqa: T201
                await asyncio.get_running_loop().create_future()  # never set: nothing is handed on again
            if message.topic == _DELAYED_TOPIC:
                await asyncio.sleep(float(_DELAY_S))
            await deliver(message)

        return on_message

    conductor.Conductor._compile_message_handler = _faulty_handler  # type: ignore[method-assign]
