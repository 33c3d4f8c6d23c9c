"""Receiver throughput and latency on loopback: the real receiver (durable acks) against a bare aiohttp 200."""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import time
from collections.abc import Sequence
from typing import Any

import aiohttp

from bench.harness import RESULTS, create_topics, spawn, stop, topic_env, unique, wait_http
from devkit.kafka_local import free_port
from schemas.envelope import RawWebhook

LEVELS = (1, 8, 32, 64)


@dataclasses.dataclass(frozen=True, slots=True)
class Request:
    """One webhook to POST."""

    path: str
    body: bytes
    content_type: str


def requests_of(webhooks: Sequence[RawWebhook], limit: int = 2_000) -> list[Request]:
    """The generator's bodies, posted where each provider posts them."""
    return [Request(f"/webhooks/{w.provider}/{w.channel}", w.body, w.content_type) for w in webhooks[:limit]]


@dataclasses.dataclass(frozen=True, slots=True)
class Load:
    """What one load pass measured."""

    concurrency: int
    requests: int
    errors: int
    seconds: float
    latencies_ms: list[float]
    from_send_ms: list[float] | None = None  # paced runs: latency from the actual send, without client lag

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready figures."""
        lat = sorted(self.latencies_ms)
        figures: dict[str, Any] = {
            "concurrency": self.concurrency,
            "requests": self.requests,
            "errors": self.errors,
            "rps": round(self.requests / self.seconds, 1),
            "p50_ms": round(_pct(lat, 0.50), 2),
            "p99_ms": round(_pct(lat, 0.99), 2),
        }
        if self.from_send_ms is not None:
            figures["p50_from_send_ms"] = round(_pct(self.from_send_ms, 0.50), 2)
            figures["p99_from_send_ms"] = round(_pct(self.from_send_ms, 0.99), 2)
        return figures


def _pct(sorted_values: Sequence[float], q: float) -> float:
    if not sorted_values:
        return float("nan")
    return sorted_values[min(len(sorted_values) - 1, int(len(sorted_values) * q))]


async def _post(http: aiohttp.ClientSession, base: str, request: Request) -> bool:
    async with http.post(base + request.path, data=request.body, headers={"Content-Type": request.content_type}) as r:
        await r.read()
        return r.status == 200


async def closed_loop(
    base: str, requests: Sequence[Request], concurrency: int, *, seconds: float, max_requests: int
) -> Load:
    """`concurrency` clients posting back to back, bounded in time and count."""
    source = itertools.cycle(requests)
    latencies: list[float] = []
    errors = 0
    sent = 0
    connector = aiohttp.TCPConnector(limit=concurrency, force_close=False)
    async with aiohttp.ClientSession(connector=connector) as http:
        # Warm the connections (and the server's code paths) before measuring.
        await asyncio.gather(*(_post(http, base, next(source)) for _ in range(concurrency * 2)))
        started = time.perf_counter()
        deadline = started + seconds

        async def client() -> None:
            nonlocal errors, sent
            while sent < max_requests and time.perf_counter() < deadline:
                sent += 1
                t = time.perf_counter()
                ok = await _post(http, base, next(source))
                latencies.append((time.perf_counter() - t) * 1000)
                errors += not ok

        await asyncio.gather(*(client() for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    return Load(concurrency, len(latencies), errors, elapsed, latencies)


async def open_loop(base: str, requests: Sequence[Request], rate: float, *, seconds: float) -> Load:
    """Requests started on a fixed schedule; latency counted from the scheduled time (no coordinated omission)."""
    source = itertools.cycle(requests)
    latencies: list[float] = []
    from_send: list[float] = []
    errors = 0
    total = int(rate * seconds)
    connector = aiohttp.TCPConnector(limit=64)
    async with aiohttp.ClientSession(connector=connector) as http:
        await asyncio.gather(*(_post(http, base, next(source)) for _ in range(16)))
        started = time.perf_counter()

        async def one(scheduled: float, request: Request) -> None:
            nonlocal errors
            sent = time.perf_counter()
            ok = await _post(http, base, request)
            done = time.perf_counter()
            latencies.append((done - scheduled) * 1000)
            from_send.append((done - sent) * 1000)
            errors += not ok

        tasks = []
        for i in range(total):
            scheduled = started + i / rate
            delay = scheduled - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(scheduled, next(source))))
        await asyncio.gather(*tasks)
        elapsed = time.perf_counter() - started
    return Load(64, len(latencies), errors, elapsed, latencies, sorted(from_send))


async def run(bootstrap: str, webhooks: Sequence[RawWebhook], *, seconds: float = 3.0) -> dict[str, Any]:
    """Both servers up at once, measured alternately at each level (so drifting machine noise hits both).

    Then the receiver again, paced at half its best rate.
    """
    requests = requests_of(webhooks)
    prefix = unique("receiver")
    settings = await create_topics(bootstrap, prefix + ".")
    bare_port, receiver_port = free_port(), free_port()
    # Production logging (warning): at info, aiohttp's access log writes a line per request.
    env = {**topic_env(settings), "STATUSFLOW_PORT": str(receiver_port), "STATUSFLOW_LOG_LEVEL": "warning"}
    servers = {
        "bare": spawn(["-m", "bench.bare_server", f"--port={bare_port}"], {}, RESULTS / "logs" / f"{prefix}-bare.log"),
        "receiver": spawn(["-m", "receiver"], env, RESULTS / "logs" / f"{prefix}-receiver.log"),
    }
    bases = {"bare": f"http://127.0.0.1:{bare_port}", "receiver": f"http://127.0.0.1:{receiver_port}"}
    results: dict[str, Any] = {"bare": [], "receiver": []}
    try:
        for name, proc in servers.items():
            wait_http(f"{bases[name]}/healthz", proc, 60)
        for level in LEVELS:
            for name in ("bare", "receiver"):
                load = await closed_loop(bases[name], requests, level, seconds=seconds, max_requests=50_000)
                results[name].append(load.as_dict())
        best = max(results["receiver"], key=lambda r: r["rps"])
        half = best["rps"] / 2
        paced = (await open_loop(bases["receiver"], requests, half, seconds=seconds)).as_dict()
        results["receiver_half_rate"] = {**paced, "target_rps": round(half, 1)}
    finally:
        for proc in servers.values():
            stop(proc)
    bare_best = max(r["rps"] for r in results["bare"])
    receiver_best = max(r["rps"] for r in results["receiver"])
    results["bare_max_rps"] = bare_best
    results["receiver_max_rps"] = receiver_best
    results["ratio_receiver_bare"] = round(receiver_best / bare_best, 3)
    return results
