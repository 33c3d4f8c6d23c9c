"""`python -m bench.bare_server --port N`: the baseline receiver, a bare aiohttp handler that answers 200."""

from __future__ import annotations

import argparse
import uuid

from aiohttp import web

from schemas.event_loop import install_event_loop


async def accept(request: web.Request) -> web.Response:
    """Read the body and say accepted, with nothing durable behind it."""
    await request.read()
    return web.json_response({"status": "accepted", "request_id": uuid.uuid4().hex})


async def healthz(request: web.Request) -> web.Response:
    """Alive."""
    return web.json_response({"status": "ok"})


def create_app() -> web.Application:
    """The same routes as the receiver, without checks or Kafka."""
    app = web.Application()
    for path in ("/webhooks/{provider}", "/webhooks/{provider}/{channel}"):
        app.router.add_post(path, accept)
    app.router.add_get("/healthz", healthz)
    return app


def main() -> None:
    """Serve on 127.0.0.1 until SIGTERM."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    install_event_loop("uvloop")  # as the receiver it is the baseline of
    web.run_app(create_app(), host="127.0.0.1", port=args.port, print=None, access_log=None)


if __name__ == "__main__":
    main()
