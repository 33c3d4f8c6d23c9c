"""An open-loop paced sender of webhooks over keep-alive HTTP/1.1 connections, and its figures.

Used by `statusflow loadgen`, the full-stack bench and the soak. A load generator shares the
machine with what it measures: aiohttp's client took about 220 µs of CPU per request at 1,500
requests/s (a sixth of two cores), which the receiver, the worker and the broker then lacked.
Here each connection is an asyncio protocol that writes one prepared request and parses one
response (status line, headers, a Content-Length or chunked body), so the generator costs a
fraction of that: providers' webhooks come from other machines, the load generator should not
weigh more than it must on this one.

Open loop: every webhook has its scheduled time; a receiver slower than the rate makes the
sender fall behind (the achieved rate shows it) rather than silently lowering the load.
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import math
import ssl
import time
from collections.abc import Callable, Iterator
from typing import Any, cast
from urllib.parse import urlsplit

import orjson

MAX_RATE = 5_000  # webhooks per second
#: Client deadline per request (the receiver's own publish deadline is 10 s).
REQUEST_TIMEOUT_S = 30.0
_HEAD_END = b"\r\n\r\n"


class HttpError(Exception):
    """A response that is not HTTP/1.1 as this client reads it, or a connection that broke."""


@dataclasses.dataclass
class _Pending:
    future: asyncio.Future[tuple[int, bytes]]


class _Connection(asyncio.Protocol):
    """One keep-alive connection carrying one request at a time."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self._buffer = bytearray()
        self._pending: _Pending | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement asyncio.Transport without subclassing it.
        self.transport = cast(asyncio.Transport, transport)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._fail(HttpError(f"connection lost: {exc!r}" if exc else "connection closed by the server"))

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        if self._pending is None:
            return
        try:
            parsed = _parse_response(self._buffer)
        except HttpError as exc:
            self._fail(exc)
            self.close()
            return
        if parsed is None:
            return
        status, body, used, keep_alive = parsed
        del self._buffer[:used]
        pending, self._pending = self._pending, None
        if not keep_alive:
            self.close()
        if not pending.future.done():
            pending.future.set_result((status, body))

    def _fail(self, exc: Exception) -> None:
        pending, self._pending = self._pending, None
        if pending is not None and not pending.future.done():
            pending.future.set_exception(exc)

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()

    async def request(self, data: bytes) -> tuple[int, bytes]:
        """Write `data` (a whole request) and wait for its response: (status, body)."""
        if self.closed or self.transport is None:
            raise HttpError("connection closed")
        future: asyncio.Future[tuple[int, bytes]] = asyncio.get_running_loop().create_future()
        self._pending = _Pending(future)
        self.transport.write(data)
        return await future


def _parse_response(buffer: bytearray) -> tuple[int, bytes, int, bool] | None:
    """(status, body, bytes used, keep-alive) of the first whole response in `buffer`, or None."""
    head_end = buffer.find(_HEAD_END)
    if head_end < 0:
        return None
    lines = bytes(buffer[:head_end]).split(b"\r\n")
    parts = lines[0].split(b" ", 2)
    if len(parts) < 2 or not parts[0].startswith(b"HTTP/1.") or not parts[1].isdigit():
        raise HttpError(f"not an HTTP/1.x status line: {lines[0][:80]!r}")
    status = int(parts[1])
    headers: dict[bytes, bytes] = {}
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        headers[name.strip().lower()] = value.strip()
    keep_alive = headers.get(b"connection", b"").lower() != b"close" and parts[0] != b"HTTP/1.0"
    start = head_end + len(_HEAD_END)
    if b"content-length" in headers:
        length = int(headers[b"content-length"])
        if len(buffer) < start + length:
            return None
        return status, bytes(buffer[start : start + length]), start + length, keep_alive
    if headers.get(b"transfer-encoding", b"").lower() == b"chunked":
        chunked = _parse_chunked(buffer, start)
        if chunked is None:
            return None
        body, used = chunked
        return status, body, used, keep_alive
    if status in (204, 304) or 100 <= status < 200:
        return status, b"", start, keep_alive
    raise HttpError("response without Content-Length or chunked body")


def _parse_chunked(buffer: bytearray, at: int) -> tuple[bytes, int] | None:
    body = bytearray()
    while True:
        line_end = buffer.find(b"\r\n", at)
        if line_end < 0:
            return None
        try:
            size = int(bytes(buffer[at:line_end]).split(b";", 1)[0], 16)
        except ValueError as exc:
            raise HttpError("bad chunk size") from exc
        at = line_end + 2
        if size == 0:
            trailer_end = buffer.find(b"\r\n", at)  # no trailers expected: the empty line ends it
            return (bytes(body), trailer_end + 2) if trailer_end >= 0 else None
        if len(buffer) < at + size + 2:
            return None
        body += buffer[at : at + size]
        at += size + 2


class HttpPool:
    """Up to `size` keep-alive connections to one origin (http or https)."""

    def __init__(self, base_url: str, size: int) -> None:
        url = urlsplit(base_url)
        if url.scheme not in ("http", "https") or not url.hostname:
            msg = f"not an http(s) URL: {base_url!r}"
            raise ValueError(msg)
        self._host = url.hostname
        self._port = url.port or (443 if url.scheme == "https" else 80)
        self._ssl = ssl.create_default_context() if url.scheme == "https" else None
        self._prefix = url.path.rstrip("/")
        self._host_header = url.netloc.encode()
        self._idle: list[_Connection] = []
        self._slots = asyncio.Semaphore(size)
        self._open: set[_Connection] = set()

    def prepare(self, method: str, path: str, body: bytes = b"", content_type: str | None = None) -> bytes:
        """The bytes of one request (built once, written as they are)."""
        head = [f"{method} {self._prefix}{path} HTTP/1.1".encode(), b"Host: " + self._host_header]
        if content_type is not None:
            head.append(b"Content-Type: " + content_type.encode())
        if body or method in ("POST", "PUT", "PATCH"):
            head.append(b"Content-Length: " + str(len(body)).encode())
        return b"\r\n".join(head) + _HEAD_END + body

    async def _connection(self) -> _Connection:
        while self._idle:
            connection = self._idle.pop()
            if not connection.closed:
                return connection
            self._open.discard(connection)
        loop = asyncio.get_running_loop()
        _, connection = await loop.create_connection(
            _Connection, self._host, self._port, ssl=self._ssl, server_hostname=self._host if self._ssl else None
        )
        self._open.add(connection)
        return connection

    async def send(self, request: bytes, timeout_s: float = REQUEST_TIMEOUT_S) -> tuple[int, bytes]:
        """(status, body) of one prepared request; HttpError, OSError or TimeoutError otherwise."""
        async with self._slots:
            connection = await self._connection()
            try:
                async with asyncio.timeout(timeout_s):
                    answer = await connection.request(request)
            except BaseException:
                connection.close()  # a request cut short leaves the connection mid-response
                self._open.discard(connection)
                raise
            if connection.closed:
                self._open.discard(connection)
            else:
                self._idle.append(connection)
            return answer

    def close(self) -> None:
        """Close every connection."""
        for connection in self._open:
            connection.close()
        self._open.clear()
        self._idle.clear()


@dataclasses.dataclass
class Sent:
    """What one paced load did; `acks` (request id → epoch ms of the 200) only when asked for."""

    target_rate: float
    sent: int = 0
    acked: int = 0
    errors: collections.Counter[str] = dataclasses.field(default_factory=collections.Counter)
    elapsed_s: float = 0.0
    latencies_ms: list[float] = dataclasses.field(default_factory=list)  # of acknowledged requests
    acks: dict[str, int] | None = None

    @property
    def rate(self) -> float:
        """Acknowledged webhooks per second."""
        return self.acked / self.elapsed_s if self.elapsed_s else 0.0

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready figures."""
        pct = percentiles(self.latencies_ms)
        return {
            "target_rate": round(self.target_rate, 1),
            "sent": self.sent,
            "acked": self.acked,
            "errors": dict(self.errors),
            "seconds": round(self.elapsed_s, 1),
            "rate": round(self.rate, 1),
            "p50_ms": round(pct["p50"], 2) if self.latencies_ms else None,
            "p99_ms": round(pct["p99"], 2) if self.latencies_ms else None,
        }

    def summary(self) -> list[str]:
        """Two lines: what was sent and acknowledged, and the latencies."""
        rate = self.sent / self.elapsed_s if self.elapsed_s else 0.0
        errors = ", ".join(f"{kind} {n}" for kind, n in sorted(self.errors.items())) or "none"
        return [
            f"sent {self.sent} in {self.elapsed_s:.1f}s ({rate:,.1f}/s), acked {self.acked}, errors {errors}",
            "latency ms (acked): "
            + "  ".join(f"{name} {value:.1f}" for name, value in percentiles(self.latencies_ms).items()),
        ]


def percentiles(values: list[float]) -> dict[str, float]:
    """p50, p90, p99 and max by nearest rank (empty input gives zeros)."""
    if not values:
        return {"p50": 0.0, "p90": 0.0, "p99": 0.0, "max": 0.0}
    ordered = sorted(values)

    def rank(q: float) -> float:
        return ordered[max(0, math.ceil(q * len(ordered)) - 1)]

    return {"p50": rank(0.50), "p90": rank(0.90), "p99": rank(0.99), "max": ordered[-1]}


@dataclasses.dataclass
class _Answers:
    """Sends one request and counts its answer in `result`."""

    pool: HttpPool
    result: Sent
    slots: asyncio.Semaphore
    on_done: Callable[[], None] | None

    async def one(self, request: bytes) -> None:
        result = self.result
        began = time.perf_counter()
        try:
            status, answer = await self.pool.send(request)
            if status == 200:
                result.acked += 1
                result.latencies_ms.append((time.perf_counter() - began) * 1000)
                if result.acks is not None:
                    result.acks[orjson.loads(answer)["request_id"]] = int(time.time() * 1000)
            else:
                result.errors[f"http {status}"] += 1
        except TimeoutError:
            result.errors["timeout"] += 1
        except (HttpError, OSError) as exc:
            result.errors[type(exc).__name__] += 1
        finally:
            self.slots.release()
            if self.on_done is not None:
                self.on_done()


async def send_paced(
    base_url: str,
    source: Iterator[tuple[str, bytes, str]],
    rate: float,
    count: int,
    *,
    concurrency: int = 64,
    keep_acks: bool = False,
    within_s: float | None = None,
    sent: Sent | None = None,
    stop_when: asyncio.Event | None = None,
    on_done: Callable[[], None] | None = None,
) -> Sent:
    """POST `count` webhooks of `source` ((provider, body, content type)) to /webhooks/{provider}.

    Open loop at `rate` (at most MAX_RATE), at most `concurrency` in flight. Ends after
    `within_s` (default: twice the schedule plus 30 s) or once `stop_when` is set, even if not
    everything was sent. `sent` may be passed in to watch it while it runs; `on_done` is called
    after each answer (or failure).
    """
    rate = min(rate, MAX_RATE)
    result = sent if sent is not None else Sent(target_rate=rate)
    result.target_rate = rate
    if keep_acks:
        result.acks = {}
    pool = HttpPool(base_url, concurrency)
    slots = asyncio.Semaphore(concurrency)
    answers = _Answers(pool, result, slots, on_done)
    deadline = time.perf_counter() + (within_s if within_s is not None else 2 * count / rate + 30)
    started = time.perf_counter()
    tasks: set[asyncio.Task[None]] = set()
    try:
        for i in range(count):
            now = time.perf_counter()
            if now > deadline or (stop_when is not None and stop_when.is_set()):
                break
            delay = started + i / rate - now
            if delay > 0:
                await asyncio.sleep(delay)
            await slots.acquire()
            provider, body, content_type = next(source)
            task = asyncio.create_task(answers.one(pool.prepare("POST", f"/webhooks/{provider}", body, content_type)))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
            result.sent += 1
        if tasks:
            await asyncio.wait(set(tasks), timeout=REQUEST_TIMEOUT_S + 5)
        for task in list(tasks):  # none unless the receiver hangs past the client deadline
            task.cancel()
            result.errors["unfinished"] += 1
    finally:
        result.elapsed_s = time.perf_counter() - started
        pool.close()
    return result


async def probe(base_url: str, path: str = "/healthz", timeout_s: float = 5.0) -> int:
    """The status of one GET (raises HttpError, OSError or TimeoutError when there is no answer)."""
    pool = HttpPool(base_url, 1)
    try:
        status, _ = await pool.send(pool.prepare("GET", path), timeout_s)
        return status
    finally:
        pool.close()
