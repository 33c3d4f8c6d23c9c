"""`statusflow`: run the local stack, create topics, tail topics, replay, check configuration, demo.

Each subcommand reads the same environment settings as the processes (KAFKA_BOOTSTRAP_SERVERS,
STATUSFLOW_TOPIC_*, ...).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import aiohttp
import orjson
from aiokafka import AIOKafkaConsumer

from schemas.channels import load_channels
from schemas.codec import SchemaError, decode_any
from schemas.errors import ConfigurationError
from schemas.settings import KafkaSettings
from schemas.topics import ensure_topics, topic_specs
from statusflow_cli import dashboard
from statusflow_cli.samples import mixed_stream
from streams.records import state_view

# What each auth kind needs on the provider's side, for check-config.
PROVIDER_SETUP = {
    "none": "no credentials: only for trusted networks",
    "meta_hmac": "the app secret (Meta signs X-Hub-Signature-256 with it); set the verify token for the GET handshake",
    "twilio_signature": "the account's auth token; set public_url to the URL configured in Twilio if behind a proxy",
    "vonage_jwt": "the signature secret of the Vonage application (signed webhooks on)",
    "header_token": "the token the provider sends in the configured header (Aivo: x-auth-token)",
    "basic": "the user name and password embedded in the webhook URL",
}


def _out(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def cmd_topics(args: argparse.Namespace) -> int:
    """Create missing topics and print the layout."""
    settings = KafkaSettings()
    created = asyncio.run(ensure_topics(settings))
    for spec in topic_specs(settings):
        state = "created" if spec.name in created else "exists"
        _out(f"{spec.name:40} partitions={spec.num_partitions} {state} {spec.topic_configs}")
    return 0


def render(value: bytes, key: bytes | None) -> dict[str, Any] | None:
    """A record as a JSON-able dict (bytes fields as text), or None when it is not ours."""
    try:
        schema, record = decode_any(value)
    except SchemaError:
        return None
    clean = {k: (v.decode("utf-8", "replace") if isinstance(v, bytes) else v) for k, v in record.items()}
    return {"schema": schema, "key": key.decode("utf-8", "replace") if key else None, **clean}


def matches(record: dict[str, Any], args: argparse.Namespace) -> bool:
    """The --channel, --message and --kind filters."""
    if args.channel and record.get("channel") != args.channel:
        return False
    if args.message and args.message not in (record.get("message_key"), record.get("message_id")):
        return False
    return not (args.kind and record.get("kind") != args.kind)


async def _tail(args: argparse.Namespace) -> int:
    settings = KafkaSettings()
    topic = getattr(settings.topics, args.topic, args.topic)
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=settings.bootstrap_servers,
        auto_offset_reset="earliest" if args.from_beginning else "latest",
        group_id=None,
    )
    await consumer.start()
    shown = 0
    try:
        while args.limit is None or shown < args.limit:
            batches = await consumer.getmany(timeout_ms=1000)
            if not batches and args.exit_when_idle:
                break
            for batch in batches.values():
                for message in batch:
                    record = render(message.value, message.key) if message.value is not None else None
                    if record is None or not matches(record, args):
                        continue
                    _out(orjson.dumps(record).decode())
                    shown += 1
                    if args.limit is not None and shown >= args.limit:
                        return 0
    finally:
        await consumer.stop()
    return 0


def cmd_tail(args: argparse.Namespace) -> int:
    """Print a topic's records as JSON lines."""
    try:
        return asyncio.run(_tail(args))
    except KeyboardInterrupt:
        return 0


def cmd_check_config(args: argparse.Namespace) -> int:
    """Validate a channels file and say what each provider must be configured with."""
    try:
        channels = load_channels(Path(args.file), os.environ)
    except ConfigurationError as exc:
        sys.stderr.write(f"invalid: {exc}\n")
        return 2
    _out(f"{args.file}: {len(channels.channels)} channels, valid")
    for channel in channels.channels:
        statuses = ", ".join(sorted(channel.statuses)) if channel.statuses else "all statuses"
        _out(f"- {channel.name}: POST /webhooks/{channel.provider}/{channel.name} ({statuses})")
        _out(f"    auth {channel.auth.kind}: {PROVIDER_SETUP.get(channel.auth.kind, '')}")
    return 0


async def _demo(args: argparse.Namespace) -> int:
    # Recent event times (the lifecycles span under two minutes): a live worker would retire
    # messages whose times are older than its retention at once.
    stream = mixed_stream(
        messages_per_kind=args.messages, seed=args.seed, prefix=args.prefix, t0=int(time.time()) - 300
    )
    base = args.url.rstrip("/")
    accepted = 0
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as http:
        for i, webhook in enumerate(stream.webhooks, start=1):
            url = f"{base}/webhooks/{webhook.provider}/{webhook.channel}"
            headers = {"Content-Type": webhook.content_type}
            async with http.post(url, data=webhook.body, headers=headers) as response:
                if response.status != 200:
                    sys.stderr.write(f"{url}: {response.status} {await response.text()}\n")
                    return 1
                accepted += 1
            sys.stdout.write(f"\rposted {i}/{len(stream.webhooks)} webhooks")
            sys.stdout.flush()
        providers = {key.split(":")[0] for key in stream.expected}
        _out(f"\n{accepted} webhooks accepted for {len(stream.expected)} messages of {len(providers)} providers")
        if not args.check:
            key = next(iter(stream.expected))
            provider, _, message_id = key.partition(":")
            _out(f"try: curl {args.worker_url.rstrip('/')}/messages/{provider}/{message_id}")
            return 0
        return await _check(http, args.worker_url.rstrip("/"), stream.expected, args.timeout)


async def _check(http: aiohttp.ClientSession, worker: str, expected: dict[str, Any], timeout_s: float) -> int:
    deadline = time.monotonic() + timeout_s
    pending = dict(expected)
    while pending and time.monotonic() < deadline:
        for key, state in list(pending.items()):
            provider, _, message_id = key.partition(":")
            try:
                async with http.get(f"{worker}/messages/{provider}/{message_id}") as response:
                    # Status only: providers without event times (Twilio) are stamped at receipt.
                    if response.status == 200 and (await response.json())["status"] == state_view(state)["status"]:
                        del pending[key]
            except aiohttp.ClientError:
                break
        if pending:
            await asyncio.sleep(0.5)  # poll interval of the check
    if pending:
        _out(f"{len(pending)} messages not yet in their expected state, e.g. {next(iter(pending))}")
        return 1
    _out(f"all {len(expected)} messages reached their expected state")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    """Post the bundled sample webhooks of every provider to a running receiver."""
    return asyncio.run(_demo(args))


def cmd_replay(args: argparse.Namespace) -> int:
    """Delegate to `python -m streams.replay`."""
    from streams.replay import main as replay_main  # noqa: PLC0415 - only this command needs the worker

    return replay_main(args.rest)


def cmd_run(args: argparse.Namespace) -> int:
    """The whole local stack (what `make run` calls)."""
    from devkit.run_local import main as run_main  # noqa: PLC0415 - only this command needs it

    return run_main()


def build_parser() -> argparse.ArgumentParser:
    """Every subcommand with its --help."""
    parser = argparse.ArgumentParser(prog="statusflow", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("run", help="broker, receiver and worker on this machine").set_defaults(func=cmd_run)
    sub.add_parser("topics", help="create missing topics and show the layout").set_defaults(func=cmd_topics)
    tail = sub.add_parser("tail", help="print a topic's records as JSON lines")
    tail.add_argument(
        "topic", help="a role (raw, events, changes, alerts, metrics, dlq, audit, signals) or a topic name"
    )
    tail.add_argument("--from-beginning", action="store_true", help="start at the oldest record (default: new ones)")
    tail.add_argument("--channel", help="only records of this channel")
    tail.add_argument("--message", help="only records of this message key or id")
    tail.add_argument("--kind", help="only alerts of this kind")
    tail.add_argument("--limit", type=int, default=None, help="stop after this many records")
    tail.add_argument("--exit-when-idle", action="store_true", help="stop when a poll returns nothing")
    tail.set_defaults(func=cmd_tail)
    demo = sub.add_parser("demo", help="post sample webhooks of every provider to a running stack")
    demo.add_argument("--url", default="http://127.0.0.1:8080", help="the receiver (http://127.0.0.1:8080)")
    demo.add_argument("--worker-url", default="http://127.0.0.1:6066", help="the worker (http://127.0.0.1:6066)")
    demo.add_argument("--messages", type=int, default=2, help="messages per provider lifecycle (2)")
    demo.add_argument("--seed", type=int, default=11)
    demo.add_argument("--prefix", default="demo-", help="message id prefix")
    demo.add_argument("--check", action="store_true", help="then wait until the worker shows every expected state")
    demo.add_argument("--timeout", type=float, default=60, help="seconds --check waits")
    demo.set_defaults(func=cmd_demo)
    check = sub.add_parser("check-config", help="validate a channels file")
    check.add_argument("file")
    check.set_defaults(func=cmd_check_config)
    replay = sub.add_parser("replay", help="rebuild derived topics and tables from the raw log (see --help)")
    replay.add_argument("rest", nargs=argparse.REMAINDER, help="arguments of python -m streams.replay")
    replay.set_defaults(func=cmd_replay)
    dashboard.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script."""
    args = build_parser().parse_args(argv)
    result: int = args.func(args)
    return result


if __name__ == "__main__":
    raise SystemExit(main())
