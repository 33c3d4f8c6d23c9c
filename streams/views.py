"""The worker's web pages: message state (routed to the owning worker), readiness and health."""

from __future__ import annotations

import logging

import aiohttp
from faust.web import Request, Response, View
from yarl import URL

from schemas.channels import DEFAULT_CHANNEL
from streams.access_web import forwarded_headers, request_may_see
from streams.core.partitioning import key_partition
from streams.core.records import message_path, state_from_bytes, state_view
from streams.domain.channel import from_bytes as channel_from_bytes
from streams.domain.channel import view as channel_view
from streams.domain.events import message_key, parse_message_key
from streams.domain.funnel import funnel_view, parse_instant
from streams.domain.history import from_bytes as history_from_bytes
from streams.domain.history import view as history_view
from streams.faust_ext.table_writes import TableWriter
from streams.funnel_stage import channel_rows
from streams.message_ids import resolve
from streams.topology import CHANNEL_TABLE, COHORT_TABLE, STATE_TABLE, Topology

log = logging.getLogger(__name__)

HISTORY = "history"


def owner_url(t: Topology, key: bytes, table: str = STATE_TABLE) -> URL | None:
    """The web URL of another worker that owns `key`'s table partition; None when it is this one.

    Computed from the assignor's table metadata rather than the producer's topic metadata,
    which stays empty until the worker has written to the changelog once.
    """
    partition = key_partition(key, t.settings.partitions)
    changelog = t.app.tables[table].changelog_topic.get_topic_name()
    own = str(t.app.conf.canonical_url)
    for url, topics in t.app.router.table_metadata(table).items():
        if partition in topics.get(changelog, ()) and str(url) != own:
            return URL(url)
    return None


def register_views(t: Topology) -> None:
    """Attach the pages to the app's web server."""
    app = t.app

    async def proxy(owner: URL, request: Request, path: str | None = None) -> Response:
        assert owner.host is not None and owner.port is not None
        routed = request.url.with_host(owner.host).with_port(owner.port)
        if path is not None:
            routed = routed.with_path(path, encoded=True)
        try:
            # The token goes along: the owner decides on it as this worker did (streams/access_web.py).
            async with app.http_client.get(
                routed, headers=forwarded_headers(request), timeout=aiohttp.ClientTimeout(total=10)
            ) as response:
                body = await response.read()
                return app.web.bytes(body, content_type=response.content_type, status=response.status)
        except (aiohttp.ClientError, TimeoutError) as exc:
            # The owner died or is restarting: until the group moves its partitions (one
            # session timeout) nobody can answer for the key. Say so; the caller retries.
            log.info("owner %s of %s did not answer: %r", owner, request.url.path, exc)
            return app.web.json(
                {"error": "the worker that owns this key did not answer; retry shortly", "owner": str(owner)},
                status=503,
                headers={"Retry-After": "2"},
            )

    async def canonical(
        request: Request, provider: str, channel: str, message_id: str, suffix: str
    ) -> bytes | Response:
        """The key to answer for locally, or the answer of the worker that holds it.

        The alias table lives on the alias's partition (streams/message_ids.py): the owner of
        the id asked for resolves it, then answers for the canonical key or asks its owner."""
        key = message_key(provider, channel, message_id).encode()
        owner = owner_url(t, key)
        if owner is not None:
            return await proxy(owner, request)
        if t.states.get(key) is not None:
            return key
        found = resolve(t, key)
        if found != key:
            elsewhere = owner_url(t, found)
            if elsewhere is not None:
                return await proxy(elsewhere, request, message_path(parse_message_key(found), suffix))
        return found

    def unknown(key: str) -> Response:
        return app.web.json({"error": "unknown message", "message_key": key}, status=404)

    async def message(request: Request, provider: str, channel: str, message_id: str) -> Response:
        # Another tenant's message is exactly as unknown as a message that does not exist.
        if not request_may_see(request, provider, channel):
            return unknown(message_key(provider, channel, message_id))
        key = await canonical(request, provider, channel, message_id, "")
        if not isinstance(key, bytes):  # the owner's answer (an aiohttp response, not faust's Response type)
            return key
        current = t.states.get(key)
        if current is None:
            return unknown(key.decode())
        state = state_from_bytes(key, current)
        if not request_may_see(request, state.provider, state.channel):  # the state's own channel decides too
            return unknown(key.decode())
        return app.web.json(state_view(state))

    async def history(request: Request, provider: str, channel: str, message_id: str) -> Response:
        if not request_may_see(request, provider, channel):
            return unknown(message_key(provider, channel, message_id))
        key = await canonical(request, provider, channel, message_id, "/history")
        if not isinstance(key, bytes):  # the owner's answer (an aiohttp response, not faust's Response type)
            return key
        current = t.states.get(key)
        if current is not None:
            state = state_from_bytes(key, current)
            if not request_may_see(request, state.provider, state.channel):
                return unknown(key.decode())
        past = t.history.get(key)
        if past is None and t.states.get(key) is None:
            return app.web.json({"error": "unknown message", "message_key": key.decode()}, status=404)
        return app.web.json(
            {
                "message_key": key.decode(),
                "limit": t.settings.history_limit,
                "history": history_view(history_from_bytes(past)),
            }
        )

    @app.page("/messages/{provider}/{channel}/{message_id}/history")
    class HistoryView(View):
        """GET the webhooks of one message in arrival order, the newest STATUSFLOW_HISTORY_LIMIT."""

        async def get(self, request: Request, provider: str, channel: str, message_id: str) -> Response:
            return await history(request, provider, channel, message_id)

    @app.page("/messages/{provider}/{first}/{second}")
    class MessageView(View):
        """GET `/messages/{provider}/{channel}/{id}`: the current state and per-status timestamps
        of one message, under any of its ids; and `/messages/{provider}/{id}/history`, the
        history of a message of the `default` channel (the form before channels).

        Both forms have three segments after /messages: a last segment `history` is always the
        history of the default channel's message, so a message whose id is the word `history`
        is read in its channel only through its history (`.../{channel}/history/history`)."""

        async def get(self, request: Request, provider: str, first: str, second: str) -> Response:
            if second == HISTORY:
                return await history(request, provider, DEFAULT_CHANNEL, first)
            return await message(request, provider, first, second)

    @app.page("/messages/{provider}/{message_id}")
    class DefaultChannelMessageView(View):
        """GET the state of a message of the channel named `default` (the form before channels)."""

        async def get(self, request: Request, provider: str, message_id: str) -> Response:
            return await message(request, provider, DEFAULT_CHANNEL, message_id)

    @app.page("/channels/{provider}/{channel}")
    class ChannelView(View):
        """GET a channel's connection state and its open windows' activity (no rates: wa.funnel)."""

        async def get(self, request: Request, provider: str, channel: str) -> Response:
            key = f"{provider}:{channel}".encode()
            owner = owner_url(t, key, CHANNEL_TABLE)
            if owner is not None:
                return await proxy(owner, request)
            current = t.channels.get(key)
            if current is None:
                return self.json({"error": "unknown channel", "channel_key": key.decode()}, status=404)
            return self.json(channel_view(channel_from_bytes(current), t.settings.policy()))

    @app.page("/funnel/{provider}/{channel}")
    class FunnelView(View):
        """GET a channel's send-cohort funnel: `campaign=`, `since=`, `until=` (epoch ms or ISO
        8601) select the cohorts whose start is in [since, until). The worker that owns the
        channel's cohort rows answers; any other one forwards the request to it."""

        async def get(self, request: Request, provider: str, channel: str) -> Response:
            query = request.query
            try:
                since = parse_instant(query["since"]) if query.get("since") else None
                until = parse_instant(query["until"]) if query.get("until") else None
            except ValueError as exc:
                return self.json({"error": f"since/until: epoch ms or ISO 8601 ({exc})"}, status=400)
            key = f"{provider}:{channel}".encode()
            owner = owner_url(t, key, COHORT_TABLE)
            if owner is not None:
                return await proxy(owner, request)
            rows = channel_rows(
                TableWriter(app, t.cohorts), key_partition(key, t.settings.partitions), provider, channel
            )
            view = funnel_view(
                provider,
                channel,
                rows,
                t.settings.cohort_s * 1000,
                campaign=query.get("campaign") or None,
                since=since,
                until=until,
            )
            return self.json(view)

    @app.page("/readyz")
    class Ready(View):
        """200 once this worker's Faust side is settled: not rebalancing, tables recovered."""

        async def get(self, request: Request) -> Response:
            busy = [name for name, flag in (("rebalancing", app.rebalancing), ("recovering", app.in_recovery)) if flag]
            return self.json({"status": "busy" if busy else "ready", "busy": busy}, status=503 if busy else 200)

    @app.page("/healthz")
    class Health(View):
        """Alive."""

        async def get(self, request: Request) -> Response:
            return self.json({"status": "ok"})
