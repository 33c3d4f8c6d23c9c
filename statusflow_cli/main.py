"""`statusflow`: run a local stack, demo, tail, replay, loadgen, topics, check-config, export-parquet, funnel, redrive.

Each subcommand reads the same environment settings as the processes (KAFKA_BOOTSTRAP_SERVERS,
STATUSFLOW_TOPIC_*, ...). Failures print one line on stderr and exit with 1 (something is
wrong), 2 (bad arguments or configuration) or 3 (broker, receiver or worker unreachable).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import aiohttp
import orjson
from aiokafka import AIOKafkaConsumer
from aiokafka.errors import KafkaConnectionError

from receiver.providers import PROVIDERS as RECEIVER_PROVIDERS
from receiver.providers import WEBHOOK_METHODS
from schemas.channel_changes import diff_configs
from schemas.channels import ChannelsConfig, load_channels
from schemas.codec import SchemaError, decode_any
from schemas.errors import ConfigurationError
from schemas.settings import KafkaSettings
from statusflow_cli import dashboard, export, funnel, loadgen, notify, redrive, topics
from statusflow_cli.console import EXIT_UNREACHABLE, EXIT_USAGE, CliError, Unreachable, complain, progress
from statusflow_cli.samples import mixed_stream
from streams.core.records import message_path, state_view
from streams.domain.events import parse_message_key
from streams.replay import add_arguments as add_replay_arguments
from streams.stages import stage_functions

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


def render(value: bytes, key: bytes | None) -> dict[str, Any] | None:
    """A record as a JSON-able dict (bytes fields as text), or None when it is not ours."""
    try:
        schema, record = decode_any(value)
    except SchemaError:
        return None
    clean = {k: (v.decode("utf-8", "replace") if isinstance(v, bytes) else v) for k, v in record.items()}
    return {"schema": schema, "key": key.decode("utf-8", "replace") if key else None, **clean}


def concerns(record: dict[str, Any], message: str) -> bool:
    """Whether a record is about this message (a key `provider:channel:id`, or an id alone):
    its own key or id, or one of the message keys an audit record names."""
    keys = [record.get("message_key"), *(record.get("message_keys") or ())]
    if message in (*keys, record.get("message_id")):
        return True
    return any(isinstance(k, str) and _message_id(k) == message for k in keys)


def _message_id(key: str) -> str | None:
    try:
        return parse_message_key(key).message_id
    except ValueError:
        return None  # a record of another form (an alert keyed by channel): not a message


def matches(record: dict[str, Any], args: argparse.Namespace) -> bool:
    """The --channel, --message and --kind filters."""
    if args.channel and record.get("channel") != args.channel:
        return False
    if args.message and not concerns(record, args.message):
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
    try:
        await consumer.start()
    except KafkaConnectionError as exc:
        await consumer.stop()
        raise Unreachable("broker", settings.bootstrap_servers, exc) from exc
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


def _checked_channels(file: str) -> ChannelsConfig:
    """The file as the receiver and the worker would load it (adapter options included)."""
    if not Path(file).is_file():
        msg = f"{file}: no such file"
        raise CliError(msg, EXIT_USAGE)
    try:
        channels = load_channels(Path(file), os.environ)
        stage_functions(channels)  # the worker refuses a file whose adapter options do not build
    except ConfigurationError as exc:
        msg = f"invalid: {exc}"
        raise CliError(msg, EXIT_USAGE) from exc
    return channels


def cmd_check_config(args: argparse.Namespace) -> int:
    """Validate a channels file and say what each provider must be configured with; with
    --against, what a reload from that file to this one would change."""
    channels = _checked_channels(args.file)
    _out(f"{args.file}: {len(channels.channels)} channels, valid")
    for channel in channels.channels:
        statuses = ", ".join(sorted(channel.statuses)) if channel.statuses else "all statuses"
        methods = "/".join(m for m in WEBHOOK_METHODS if m in RECEIVER_PROVIDERS[channel.provider].methods)
        _out(f"- {channel.name}: {methods} /webhooks/{channel.provider}/{channel.name} ({statuses})")
        _out(f"    auth {channel.auth.kind}: {PROVIDER_SETUP.get(channel.auth.kind, '')}")
    if args.against is not None:
        diff = diff_configs(_checked_channels(args.against), channels)
        if diff.empty:
            _out(f"reload from {args.against}: no change")
        else:
            _out(f"reload from {args.against}:")
            for line in diff.lines():
                _out(f"  {line}")
    return 0


async def _demo(args: argparse.Namespace) -> int:
    # Recent event times (the lifecycles span under two minutes): a live worker would retire
    # messages whose times are older than its retention at once.
    start = args.start if args.start is not None else int(time.time()) - 300
    stream = mixed_stream(messages_per_kind=args.messages, seed=args.seed, prefix=args.prefix, t0=start)
    base = args.url.rstrip("/")
    accepted = 0
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as http:
        with progress("demo: posting", len(stream.webhooks)) as bar:
            for webhook in stream.webhooks:
                url = f"{base}/webhooks/{webhook.provider}/{webhook.channel}"
                headers = {"Content-Type": webhook.content_type}
                try:
                    async with http.post(url, data=webhook.body, headers=headers) as response:
                        if response.status != 200:
                            msg = f"{url}: {response.status} {await response.text()}"
                            raise CliError(msg)
                except aiohttp.ClientConnectionError as exc:
                    raise Unreachable("receiver", base, exc) from exc
                accepted += 1
                bar.advance()
        providers = {parse_message_key(key).provider for key in stream.expected}
        _out(f"{accepted} webhooks accepted for {len(stream.expected)} messages of {len(providers)} providers")
        if not args.check:
            key = parse_message_key(next(iter(stream.expected)))
            _out(f"try: curl {args.worker_url.rstrip('/')}{message_path(key)}")
            return 0
        return await _check(http, args.worker_url.rstrip("/"), stream.expected, args.timeout)


async def _check(http: aiohttp.ClientSession, worker: str, expected: dict[str, Any], timeout_s: float) -> int:
    deadline = time.monotonic() + timeout_s
    pending = dict(expected)
    with progress("demo: checking states", len(expected)) as bar:
        while pending and time.monotonic() < deadline:
            for key, state in list(pending.items()):
                try:
                    async with http.get(f"{worker}{message_path(parse_message_key(key))}") as response:
                        # Status only: providers without event times (Twilio) are stamped at receipt.
                        if response.status == 200 and (await response.json())["status"] == state_view(state)["status"]:
                            del pending[key]
                            bar.advance()
                except aiohttp.ClientError:
                    break  # the worker is (re)starting: try again at the next poll
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
    """`python -m streams.replay` with a progress bar."""
    from streams.replay import run as replay_run  # noqa: PLC0415 - only this command needs the worker

    with progress(f"replay {args.app_id}", None) as bar:
        try:
            return replay_run(args, report=bar.update)
        except KafkaConnectionError as exc:
            raise Unreachable("broker", KafkaSettings().bootstrap_servers, exc) from exc


def cmd_run(args: argparse.Namespace) -> int:
    """The whole local stack (what `make run` calls)."""
    from devkit.kafka_local import BrokerError  # noqa: PLC0415 - only this command needs the devkit
    from devkit.run_local import main as run_main  # noqa: PLC0415

    try:
        return run_main()
    except BrokerError as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        msg = f"the local Kafka broker did not start: {first} (its log is in the broker's data directory)"
        raise CliError(msg, EXIT_UNREACHABLE) from exc


def build_parser() -> argparse.ArgumentParser:
    """Every subcommand with its --help."""
    parser = argparse.ArgumentParser(prog="statusflow", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser(
        "run",
        help="broker, receiver and worker on this machine (what make run calls)",
        description="Start a local Kafka broker, the receiver and one worker; Ctrl-C stops all of them. "
        "Ports: STATUSFLOW_KAFKA_PORT (9092), STATUSFLOW_PORT (8080), STATUSFLOW_WEB_PORT (6066); "
        "state and logs under STATUSFLOW_LOCAL_DIR (.local).",
    ).set_defaults(func=cmd_run)
    topics.add_parser(sub)
    tail = sub.add_parser(
        "tail",
        help="print a topic's records as JSON lines",
        description="Decode a topic's Avro records and print them as JSON lines, optionally filtered.",
    )
    tail.add_argument(
        "topic",
        help="a role (raw, events, changes, alerts, metrics, funnel, dlq, audit, signals, redrive) or a topic name",
    )
    tail.add_argument("--from-beginning", action="store_true", help="start at the oldest record (default: new ones)")
    tail.add_argument("--channel", help="only records of this channel")
    tail.add_argument("--message", help="only records of this message key (provider:channel:id) or id")
    tail.add_argument("--kind", help="only alerts of this kind")
    tail.add_argument("--limit", type=int, default=None, help="stop after this many records")
    tail.add_argument("--exit-when-idle", action="store_true", help="stop when a poll returns nothing")
    tail.set_defaults(func=cmd_tail)
    demo = sub.add_parser(
        "demo",
        help="post sample webhooks of every provider to a running stack",
        description="Post the bundled sample webhooks of all nine providers (with repeats and out-of-order "
        "deliveries) to a running receiver; --check then waits until the worker shows every expected state.",
    )
    demo.add_argument("--url", default="http://127.0.0.1:8080", help="the receiver (http://127.0.0.1:8080)")
    demo.add_argument("--worker-url", default="http://127.0.0.1:6066", help="the worker (http://127.0.0.1:6066)")
    demo.add_argument("--messages", type=int, default=2, help="messages per provider lifecycle (2)")
    demo.add_argument("--seed", type=int, default=11, help="seed of the shuffle (11)")
    demo.add_argument("--prefix", default="demo-", help="message id prefix")
    demo.add_argument(
        "--start",
        type=int,
        default=None,
        help="epoch seconds of the first event (default: 5 minutes ago; older times meet the worker's retention)",
    )
    demo.add_argument("--check", action="store_true", help="then wait until the worker shows every expected state")
    demo.add_argument("--timeout", type=float, default=60, help="seconds --check waits")
    demo.set_defaults(func=cmd_demo)
    check = sub.add_parser(
        "check-config",
        help="validate a channels file, and say what a reload would change",
        description="Validate a channels file (TOML or YAML) and print what each provider must be configured with; "
        "with --against, what the receiver and the worker would change when they reload it.",
    )
    check.add_argument("file", help="the channels file (what STATUSFLOW_CHANNELS_FILE names)")
    check.add_argument(
        "--against",
        metavar="CURRENT",
        help="the file in force: print what a reload would change (channels added, removed, changed "
        "and which fields; secrets only as rotated)",
    )
    check.set_defaults(func=cmd_check_config)
    replay = sub.add_parser(
        "replay",
        help="rebuild derived topics and tables from the raw log",
        description="Rebuild every derived topic (renamed with a suffix) and table from wa.webhooks.raw under a "
        "new application id, until caught up with the raw log as it was at start.",
    )
    add_replay_arguments(replay)
    replay.set_defaults(func=cmd_replay)
    loadgen.add_parser(sub)
    export.add_parser(sub)
    dashboard.add_parser(sub)
    redrive.add_parser(sub)
    funnel.add_parser(sub)
    notify.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script: one line and an exit code for every expected failure."""
    args = build_parser().parse_args(argv)
    # aiokafka logs each failed connection attempt; the command says it once, in one line.
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)
    try:
        result: int = args.func(args)
    except CliError as exc:
        complain(str(exc))
        return exc.exit_code
    except KafkaConnectionError as exc:
        complain(f"cannot reach the broker at {KafkaSettings().bootstrap_servers} ({exc})")
        return EXIT_UNREACHABLE
    except KeyboardInterrupt:
        return 130
    return result


if __name__ == "__main__":
    raise SystemExit(main())
