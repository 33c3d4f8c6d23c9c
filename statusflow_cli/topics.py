"""`statusflow topics`: create the missing topics of the contract, or check the existing ones."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.errors import KafkaConnectionError

from schemas.settings import KafkaSettings
from schemas.topics import ensure_topics, topic_specs
from statusflow_cli.console import EXIT_FAILED, Unreachable, say


@dataclasses.dataclass(frozen=True, slots=True)
class ActualTopic:
    """What the broker says about one topic."""

    partitions: int
    configs: dict[str, str]


def problems(spec: NewTopic, actual: ActualTopic | None) -> list[str]:
    """How an existing topic differs from the contract (empty when it matches)."""
    if actual is None:
        return [f"{spec.name}: missing"]
    found: list[str] = []
    if actual.partitions != spec.num_partitions:
        found.append(f"{spec.name}: {actual.partitions} partitions, expected {spec.num_partitions}")
    for name, value in sorted(spec.topic_configs.items()):
        if actual.configs.get(name) != value:
            found.append(f"{spec.name}: {name}={actual.configs.get(name)}, expected {value}")
    return found


async def describe(settings: KafkaSettings, names: list[str]) -> dict[str, ActualTopic]:
    """Partitions and configuration of those of `names` that exist."""
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.bootstrap_servers)
    try:
        await admin.start()
    except KafkaConnectionError as exc:
        await admin.close()
        raise Unreachable("broker", settings.bootstrap_servers, exc) from exc
    try:
        existing = [name for name in names if name in set(await admin.list_topics())]
        if not existing:
            return {}
        described = await admin.describe_topics(existing)
        partitions = {d["topic"]: len(d["partitions"]) for d in described}
        resources = [ConfigResource(ConfigResourceType.TOPIC, name, None) for name in existing]
        configs: dict[str, dict[str, str]] = {}
        for response in await admin.describe_configs(resources):
            for _code, _message, _type, name, entries in response.resources:
                configs[name] = {entry[0]: entry[1] for entry in entries}
        return {name: ActualTopic(partitions[name], configs.get(name, {})) for name in existing}
    finally:
        await admin.close()


def cmd_topics(args: argparse.Namespace) -> int:
    """Create missing topics (or only check them with --check) and print the layout."""
    settings = KafkaSettings()
    specs = topic_specs(settings)
    created: list[str] = []
    if not args.check:
        try:
            created = asyncio.run(ensure_topics(settings))
        except KafkaConnectionError as exc:
            raise Unreachable("broker", settings.bootstrap_servers, exc) from exc
    actual = asyncio.run(describe(settings, [spec.name for spec in specs]))
    found: list[str] = []
    for spec in specs:
        state = "created" if spec.name in created else ("exists" if spec.name in actual else "missing")
        configs = " ".join(f"{k}={v}" for k, v in sorted(spec.topic_configs.items()))
        say(f"{spec.name:40} partitions={spec.num_partitions} {state:8} {configs}")
        found += problems(spec, actual.get(spec.name))
    for problem in found:
        say(f"MISMATCH {problem}")
    if found:
        say(f"{len(found)} differences from the contract (docs/topics.md)")
        return EXIT_FAILED
    return 0


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """The `topics` subcommand."""
    parser = sub.add_parser(
        "topics",
        help="create missing topics and check partitions, retention and cleanup policy",
        description="Create the missing topics of the contract (partitions, retention, cleanup policy) and "
        "check the existing ones against it; exit 1 on any difference.",
    )
    parser.add_argument("--check", action="store_true", help="create nothing, only compare with the contract")
    parser.set_defaults(func=cmd_topics)
