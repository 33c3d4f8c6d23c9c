"""Slow and oversized clients cost the receiver bounded time and memory (raw sockets, loopback).

A slowloris client sends its headers and a few bytes of body, then stalls: it gets 408 once
STATUSFLOW_BODY_READ_TIMEOUT_S has passed and its connection is closed. A body over
STATUSFLOW_MAX_BODY_BYTES gets 413 whether its length is declared (refused before any byte of
it is read), chunked or compressed (cut off while streaming), and the connection is closed
however long the client keeps sending. Waits are on conditions, bounded generously.
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiohttp.test_utils import TestClient, TestServer

from receiver.app import create_app
from receiver.settings import ReceiverSettings
from schemas.codec import codec
from tests.factories import FIXTURES
from tests.unit.test_receiver_http import RecordingPublisher

LIMIT = 4096
BODY = (FIXTURES / "meta" / "status_sent.json").read_bytes()
BOUND_S = 60  # a generous bound for a condition, not a measurement

Served = tuple[TestClient[Any, Any], RecordingPublisher]


@pytest.fixture
async def served(tmp_path: Path) -> AsyncIterator[Served]:
    publisher = RecordingPublisher()
    settings = ReceiverSettings(spool_dir=tmp_path / "spool", max_body_bytes=LIMIT, body_read_timeout_s=0.5)
    client: TestClient[Any, Any] = TestClient(TestServer(create_app(settings, publisher), host="127.0.0.1"))
    await client.start_server()
    yield client, publisher
    await client.close()


async def _connect(client: TestClient[Any, Any]) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    assert client.port is not None
    return await asyncio.open_connection("127.0.0.1", client.port)


def _head(path: str, extra: str) -> bytes:
    return f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n{extra}\r\n".encode()


async def _response(reader: asyncio.StreamReader) -> tuple[int, dict[str, Any]]:
    """Status and JSON body of one response, read as soon as it arrives."""
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), BOUND_S)
    lines = head.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:] if line)}
    assert headers.get("connection", "").lower() != "keep-alive"
    body = await asyncio.wait_for(reader.readexactly(int(headers["content-length"])), BOUND_S)
    return int(lines[0].split()[1]), orjson.loads(body)


async def _closed(reader: asyncio.StreamReader) -> None:
    """Until the server has closed the connection (EOF or reset)."""
    with contextlib.suppress(ConnectionError):
        await asyncio.wait_for(reader.read(-1), BOUND_S)


async def test_a_stalled_body_gets_408_and_the_connection_is_closed(served: Served) -> None:
    client, publisher = served
    reader, writer = await _connect(client)
    writer.write(_head("/webhooks/meta", f"Content-Length: {len(BODY)}\r\n") + BODY[:10])
    await writer.drain()
    # Stalled: the rest never comes. Meanwhile the receiver serves others.
    ok = await client.post("/webhooks/meta", data=BODY, headers={"Content-Type": "application/json"})
    assert ok.status == 200
    status, answer = await _response(reader)
    await _closed(reader)
    writer.close()
    assert status == 408
    assert "0.5 s" in answer["error"]
    audits = [codec("audit_record").decode(v) for _, v in publisher.on("wa.audit")]
    assert [(a["http_status"], a["payload_excerpt"]) for a in audits] == [(408, None)]
    assert len(publisher.on("wa.webhooks.raw")) == 1  # only the complete webhook


async def test_a_trickling_body_is_cut_at_the_deadline_not_kept_alive_by_each_byte(served: Served) -> None:
    client, _ = served
    reader, writer = await _connect(client)
    writer.write(_head("/webhooks/meta", f"Content-Length: {len(BODY)}\r\n"))
    await writer.drain()

    async def trickle() -> None:
        # One byte at a time, each well within any per-read timeout: only a whole-body deadline stops it.
        for byte in BODY[:-1]:
            writer.write(bytes([byte]))
            await writer.drain()
            await asyncio.sleep(0.05)

    sender = asyncio.create_task(trickle())
    try:
        status, _ = await _response(reader)
        await _closed(reader)
    finally:
        sender.cancel()
        await asyncio.gather(sender, return_exceptions=True)
        writer.close()
    assert status == 408


async def test_a_declared_oversized_body_is_refused_before_it_is_sent(served: Served) -> None:
    client, publisher = served
    reader, writer = await _connect(client)
    writer.write(_head("/webhooks/meta", "Content-Length: 1073741824\r\n"))  # 1 GiB announced, none sent
    await writer.drain()
    status, answer = await _response(reader)
    await _closed(reader)
    writer.close()
    assert status == 413
    assert "1073741824" in answer["error"]
    assert publisher.on("wa.webhooks.raw") == []


async def _send_forever(writer: asyncio.StreamWriter, chunk: bytes) -> int:
    sent = 0
    try:
        while True:
            writer.write(chunk)
            await writer.drain()
            sent += len(chunk)
    except (ConnectionError, OSError):
        return sent


async def test_a_chunked_body_without_end_is_cut_at_the_limit_and_the_connection_closed(served: Served) -> None:
    client, publisher = served
    reader, writer = await _connect(client)
    writer.write(_head("/webhooks/meta", "Transfer-Encoding: chunked\r\n"))
    piece = b"[" * 1024
    chunk = f"{len(piece):x}\r\n".encode() + piece + b"\r\n"
    # An endless body: the receiver must answer 413 and close, not read it all.
    sender = asyncio.create_task(_send_forever(writer, chunk))
    status, answer = await _response(reader)
    await asyncio.wait_for(sender, BOUND_S)  # the server closed: sending fails, it does not go on forever
    writer.close()
    assert status == 413
    assert str(LIMIT) in answer["error"]
    assert publisher.on("wa.webhooks.raw") == []


async def test_a_compressed_body_is_limited_by_its_decompressed_size(served: Served) -> None:
    client, publisher = served
    bomb = gzip.compress(b" " * (64 * LIMIT))
    assert len(bomb) < LIMIT
    response = await client.post(
        "/webhooks/meta", data=bomb, headers={"Content-Type": "application/json", "Content-Encoding": "gzip"}
    )
    assert response.status == 413
    assert publisher.on("wa.webhooks.raw") == []
