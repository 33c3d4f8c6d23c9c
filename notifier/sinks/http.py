"""POST JSON to a URL; any answer but 2xx, or no answer, is a SinkError."""

from __future__ import annotations

import aiohttp

from notifier.sinks.base import SinkError


async def post(session: aiohttp.ClientSession, url: str, body: bytes, headers: dict[str, str]) -> None:
    """One attempt."""
    try:
        async with session.post(url, data=body, headers={"Content-Type": "application/json", **headers}) as response:
            if response.status // 100 != 2:
                answer = (await response.text())[:200]
                raise SinkError(f"{url} answered {response.status}: {answer}")
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise SinkError(f"{url}: {type(exc).__name__}: {exc}") from exc
