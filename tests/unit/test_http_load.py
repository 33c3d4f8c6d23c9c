"""The lean load client: responses parsed as HTTP/1.1 frames them, answers counted, connections reused."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator, Iterator

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from statusflow_cli.http_load import HttpError, HttpPool, _parse_response, probe, send_paced


def test_a_response_is_whole_only_once_its_body_is() -> None:
    body = b'{"status": "accepted"}'
    head = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\ncontent-length: %d\r\n\r\n" % len(body)
    assert _parse_response(bytearray(head + body[:-1])) is None
    # The next response's first bytes may already be in the buffer: only this one is used.
    assert _parse_response(bytearray(head + body + b"HTTP/1.1 2")) == (200, body, len(head) + len(body), True)


def test_chunked_bodies_and_connection_close_are_understood() -> None:
    raw = b"HTTP/1.1 503 Service Unavailable\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    raw += b"5\r\nhello\r\n6; ext=1\r\n world\r\n0\r\n\r\n"
    assert _parse_response(bytearray(raw[:-3])) is None
    assert _parse_response(bytearray(raw)) == (503, b"hello world", len(raw), False)


def test_what_is_not_http_is_an_error() -> None:
    with pytest.raises(HttpError, match="status line"):
        _parse_response(bytearray(b"SSH-2.0-OpenSSH\r\n\r\n"))
    with pytest.raises(HttpError, match="Content-Length"):
        _parse_response(bytearray(b"HTTP/1.1 200 OK\r\nServer: x\r\n\r\nbody"))


def test_requests_are_prepared_once_with_length_and_type() -> None:
    pool = HttpPool("http://127.0.0.1:8080/base/", 1)
    request = pool.prepare("POST", "/webhooks/meta", b"{}", "application/json")
    assert request == (
        b"POST /base/webhooks/meta HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n"
        b"Content-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"
    )
    with pytest.raises(ValueError, match="http"):
        HttpPool("ftp://127.0.0.1/", 1)


def _bodies() -> Iterator[tuple[str, bytes, str]]:
    for n in itertools.count():
        yield ("meta" if n % 4 else "refuse"), f'{{"n": {n}}}'.encode(), "application/json"


@pytest.fixture
async def server() -> AsyncIterator[tuple[str, dict[str, int]]]:
    """Answers 200 with a request id for /webhooks/meta, 422 for /webhooks/refuse; counts
    connections (every other response closes its connection)."""
    seen = {"requests": 0, "connections": 0}
    peers: set[object] = set()

    async def webhook(request: web.Request) -> web.Response:
        seen["requests"] += 1
        peer = request.transport
        if peer not in peers:
            peers.add(peer)
            seen["connections"] += 1
        body = await request.json()
        if request.match_info["provider"] == "refuse":
            return web.json_response({"error": "no"}, status=422)
        response = web.json_response({"status": "accepted", "request_id": f"r{body['n']}"})
        if body["n"] % 10 == 1:
            response.force_close()
        return response

    async def healthz(_: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()  # chunked: no Content-Length
        response.enable_chunked_encoding()
        return response

    app = web.Application()
    app.router.add_post("/webhooks/{provider}", webhook)
    app.router.add_get("/healthz", healthz)
    async with TestServer(app, host="127.0.0.1") as test_server:
        yield str(test_server.make_url("")).rstrip("/"), seen


async def test_every_answer_is_counted_and_connections_are_kept(server: tuple[str, dict[str, int]]) -> None:
    base, seen = server
    assert await probe(base) == 200
    done: list[None] = []
    sent = await send_paced(
        base, _bodies(), rate=2_000, count=400, concurrency=8, keep_acks=True, on_done=lambda: done.append(None)
    )
    assert (sent.sent, sent.acked, dict(sent.errors), len(done)) == (400, 300, {"http 422": 100}, 400)
    assert sent.acks is not None and len(sent.acks) == 300 and "r1" in sent.acks and "r4" not in sent.acks
    assert len(sent.latencies_ms) == 300
    assert seen["requests"] == 400
    # Keep-alive: far fewer connections than requests, but a closed connection is replaced.
    assert 8 < seen["connections"] < 100


async def test_a_receiver_that_is_gone_is_an_error_per_request() -> None:
    sent = await send_paced("http://127.0.0.1:9", _bodies(), rate=1_000, count=5, concurrency=2)
    assert sent.acked == 0 and sum(sent.errors.values()) == 5
