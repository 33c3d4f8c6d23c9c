"""Fuzz campaign of the worker-side parse: every adapter and the codec, on hostile bytes.

    .venv/bin/python -m devkit.fuzz --inputs 1000000 --workers 2     (= make fuzz)

The invariant (`check_webhook`, `check_record`): no exception escapes but the documented one
(UnparseableWebhook from an adapter, SchemaError from the codec), and a raw envelope always
ends as encodable events or a dead-letter reason. The generators are plain `random` over the
fixtures of tests/fixtures/<provider>/: byte-level mutation (truncation, flips, invalid UTF-8,
spliced bytes), structural mutation of the parsed JSON (wrong types, huge numbers, deep nesting,
enormous arrays), random JSON from each provider's own keys, form bodies for Twilio and Weni,
and corrupted, truncated or re-labelled single-object Avro records. Crashers are written to
`--crashers` (one file per input) so that they can become regression fixtures.
"""

from __future__ import annotations

import argparse
import base64
import dataclasses
import functools
import json
import multiprocessing
import random
import string
import sys
import time
import traceback
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import orjson

from schemas.codec import SCHEMA_NAMES, SchemaError, codec, decode_any
from schemas.envelope import RawWebhook
from streams.adapters.base import ParseResult, UnparseableWebhook
from streams.adapters.registry import ADAPTERS
from streams.clock import now_ms
from streams.core.batches import RawRecord, plan_normalize
from streams.core.outputs import Source

FIXTURES = Path(__file__).resolve().parents[1] / "tests" / "fixtures"
FORM_PROVIDERS = frozenset({"twilio", "weni"})
RECEIVED_AT = 1_750_030_100_000
_SOURCE = Source("wa.webhooks.raw", 0, 0)


class Crash(Exception):
    """An input broke the invariant: an undocumented exception, or an outcome that is neither events nor a reason."""


# ---------------------------------------------------------------------------------------- invariants


def envelope(provider: str, body: bytes, content_type: str = "application/json") -> RawWebhook:
    """The raw envelope the receiver would write for `body`."""
    return RawWebhook(
        request_id="fuzz-1",
        provider=provider,
        channel="default",
        received_at=RECEIVED_AT,
        content_type=content_type,
        url=f"http://127.0.0.1:8080/webhooks/{provider}",
        body=body,
    )


def check_webhook(provider: str, body: bytes, content_type: str = "application/json") -> str:
    """Run one body through the adapter and the whole normalize plan; the outcome word, or Crash.

    The adapter is called directly first: `normalize` turns any adapter exception into a dead
    letter so the worker survives, which would hide an adapter bug from the campaign.
    """
    raw = envelope(provider, body, content_type)
    rejected: int | None = None
    try:
        result = ADAPTERS[provider].parse(raw)
    except UnparseableWebhook:
        pass
    except Exception as exc:
        msg = f"{provider} adapter raised {exc!r}"
        raise Crash(msg) from exc
    else:
        if not isinstance(result, ParseResult):
            msg = f"{provider} adapter returned {type(result).__name__}"
            raise Crash(msg)
        rejected = len(result.rejected)
    try:
        plan = plan_normalize([RawRecord(b"fuzz-1", raw.to_avro(), _SOURCE)], partitions=4, at=now_ms())
        plan.encoded_bundles()
    except Exception as exc:
        msg = f"normalize plan of a {provider} webhook raised {exc!r}"
        raise Crash(msg) from exc
    if len(plan.audits) != 1:
        msg = f"{len(plan.audits)} audit records for one webhook"
        raise Crash(msg)
    if rejected is not None and len(plan.dead_letters) != rejected:
        msg = f"{rejected} items rejected but {len(plan.dead_letters)} dead letters"
        raise Crash(msg)
    if plan.dead_letters:
        # Only a batch with items rejected one by one both dead-letters and produces events.
        return "partial" if plan.events else "dead_letter"
    return "events" if plan.events else "ignored"


def check_record(data: bytes, name: str = "raw_webhook") -> str:
    """Decode arbitrary bytes as `name` and as any schema: a record or SchemaError, nothing else."""
    outcome = "record"
    for decode in (lambda: codec(name).decode(data), lambda: decode_any(data)):
        try:
            decode()
        except SchemaError:
            outcome = "schema_error"
        except Exception as exc:
            msg = f"decoding {len(data)} bytes as {name} raised {exc!r}"
            raise Crash(msg) from exc
    if name == "raw_webhook":
        try:
            record = plan_normalize([RawRecord(b"fuzz-1", data, _SOURCE)], partitions=4, at=now_ms())
        except Exception as exc:
            msg = f"normalize plan of {len(data)} envelope bytes raised {exc!r}"
            raise Crash(msg) from exc
        if len(record.audits) != 1:
            msg = "no audit for an undecodable envelope"
            raise Crash(msg)
    return outcome


# ---------------------------------------------------------------------------------------- generators


def load_fixtures() -> dict[str, list[bytes]]:
    """Fixture bodies by provider (every registered adapter has a folder)."""
    found: dict[str, list[bytes]] = {}
    for provider in ADAPTERS:
        folder = FIXTURES / provider
        found[provider] = [p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()] if folder.is_dir() else []
    return found


def _keys(node: object, into: set[str]) -> None:
    if isinstance(node, dict):
        for key, value in node.items():
            into.add(key)
            _keys(value, into)
    elif isinstance(node, list):
        for item in node:
            _keys(item, into)


_HUGE = (
    2**63,
    2**63 - 1,
    -(2**63),
    2**64 - 1,
    10**300,
    1e308,
    -1e308,
    float("inf"),
    float("nan"),
    1e-300,
    253_402_300_800_000,
    -1,
    0,
)
_STRINGS = (
    "",
    " ",
    "\x00",
    "\ud800",
    "9" * 400,
    "1e999",
    "NaN",
    "9999-12-31T23:59:59Z",
    "0001-01-01T00:00:00+00:00",
    "2025-06-16T01:02:03",
    "2025-06-16T01:02:03+99:99",
    "whatsapp:",
    ":",
    "+",
    "$.x",
    "é" * 50,
    "🚀",
)


class Generator:
    """Hostile webhook bodies and Avro records from one seeded `random.Random`."""

    def __init__(self, rng: random.Random, fixtures: dict[str, list[bytes]]) -> None:
        self.rng = rng
        self.fixtures = fixtures
        self.docs: dict[str, list[object]] = {}
        self.keys: dict[str, list[str]] = {}
        for provider, bodies in fixtures.items():
            docs, keys = [], set[str]()
            for body in bodies:
                try:
                    doc = orjson.loads(body)
                except orjson.JSONDecodeError:
                    continue
                docs.append(doc)
                _keys(doc, keys)
            self.docs[provider] = docs
            self.keys[provider] = sorted(keys) or ["id", "status"]
        self.records = self._valid_records()

    # ------------------------------------------------------------------ JSON values

    def scalar(self, keys: list[str]) -> object:
        """A scalar of any JSON type, often a hostile one."""
        r = self.rng
        makers: tuple[Callable[[], object], ...] = (
            lambda: None,
            lambda: r.random() < 0.5,
            lambda: r.choice(_HUGE),
            lambda: r.randint(-(10**6), 2 * 10**12),
            lambda: r.choice(_STRINGS),
            lambda: r.choice(keys),
            lambda: r.uniform(-1e13, 1e13),
            lambda: "".join(r.choice(string.printable) for _ in range(r.randrange(12))),
        )
        return r.choice(makers)()

    def value(self, keys: list[str], depth: int = 0) -> object:
        """Arbitrary JSON built from `keys`, occasionally very deep or very wide."""
        r = self.rng
        roll = r.random()
        if depth > 4 or roll < 0.45:
            return self.scalar(keys)
        if roll < 0.7:
            return [self.value(keys, depth + 1) for _ in range(r.randrange(4))]
        if roll < 0.98:
            return {r.choice(keys): self.value(keys, depth + 1) for _ in range(r.randrange(6))}
        return self.deep(keys)

    def deep(self, keys: list[str]) -> object:
        """Nesting well past what a parser may recurse through."""
        node: object = self.scalar(keys)
        for _ in range(self.rng.choice((50, 500, 1100, 3000))):
            node = [node] if self.rng.random() < 0.5 else {self.rng.choice(keys): node}
        return node

    def mutate(self, node: object, keys: list[str]) -> object:
        """The document with one node replaced, removed, retyped or blown up."""
        r = self.rng
        if isinstance(node, dict) and node and r.random() < 0.8:
            key = r.choice(list(node))
            copy = dict(node)
            action = r.randrange(5)
            if action == 0:
                del copy[key]
            elif action == 1:
                copy[key] = self.value(keys)
            elif action == 2:
                copy[r.choice(keys)] = self.scalar(keys)
            else:
                copy[key] = self.mutate(copy[key], keys)
            return copy
        if isinstance(node, list) and node and r.random() < 0.8:
            copy_list = list(node)
            index = r.randrange(len(copy_list))
            action = r.randrange(6)
            if action == 0:
                # Enormous arrays: the same item thousands of times (within the 1 MiB body limit).
                copy_list = copy_list * r.choice((10, 100, 2000))
            elif action == 1:
                del copy_list[index]
            elif action == 2:
                copy_list.insert(index, self.value(keys))
            else:
                copy_list[index] = self.mutate(copy_list[index], keys)
            return copy_list
        return self.value(keys)

    # ------------------------------------------------------------------ bodies

    def body(self, provider: str) -> tuple[bytes, str]:
        """A hostile body for `provider` and the content type it is sent with."""
        r = self.rng
        keys = self.keys[provider]
        docs = self.docs[provider]
        bodies = self.fixtures[provider]
        form = provider in FORM_PROVIDERS and (provider == "twilio" or r.random() < 0.3)
        content_type = "application/x-www-form-urlencoded" if form else "application/json"
        roll = r.random()
        if form and roll < 0.5:
            return self.form_body(keys), content_type
        if docs and roll < 0.55:
            return self._dumps(self.mutate(r.choice(docs), keys)), content_type
        if bodies and roll < 0.85:
            return self.mutate_bytes(r.choice(bodies)), content_type
        return self._dumps(self.value(keys)), content_type

    def _dumps(self, doc: object) -> bytes:
        # json, not orjson: it writes NaN, Infinity, lone surrogates and 1e400-sized ints,
        # which a hostile sender can put on the wire too.
        try:
            return json.dumps(doc).encode("utf-8", "surrogatepass")
        except (RecursionError, ValueError):
            return b"[" * 5000

    def mutate_bytes(self, data: bytes) -> bytes:
        """Byte-level damage: truncation, flips, invalid UTF-8, spliced or repeated slices."""
        r = self.rng
        buf = bytearray(data)
        for _ in range(r.randrange(1, 4)):
            action = r.randrange(7)
            position = r.randrange(len(buf) + 1)
            if action == 0:
                del buf[position:]
            elif action == 1 and buf:
                buf[min(position, len(buf) - 1)] ^= 1 << r.randrange(8)
            elif action == 2:
                buf[position:position] = r.choice((b"\xff", b"\xc3", b"\xed\xa0\x80", b"\x00", b"\xf4\x90\x80\x80"))
            elif action == 3:
                buf[position:position] = r.randbytes(r.randrange(1, 16))
            elif action == 4 and buf:
                start = r.randrange(len(buf))
                buf[position:position] = buf[start : start + r.randrange(1, 64)]
            elif action == 5:
                buf[position:position] = str(r.choice(_HUGE)).encode()
            else:
                buf[position:position] = r.choice((b"{", b"}", b"[", b"]", b'"', b",", b":", b"\\u"))
        return bytes(buf)

    def form_body(self, keys: list[str]) -> bytes:
        """A urlencoded form from the provider's keys, sometimes malformed on purpose."""
        r = self.rng
        pairs = [(r.choice(keys), str(self.scalar(keys))) for _ in range(r.randrange(8))]
        text = urlencode(pairs, errors="surrogatepass")
        roll = r.random()
        if roll < 0.15:
            text += r.choice(("&", "&&", "=", "%", "%zz", "%ff", "a=%e9", "=x", "&a"))
        elif roll < 0.25:
            text = "&".join(
                f"{quote(k, errors='surrogatepass')}={quote(v, errors='surrogatepass')}"
                for k, v in pairs * r.choice((50, 2000))
            )
        data = text.encode("ascii", "surrogatepass")
        return self.mutate_bytes(data) if r.random() < 0.2 else data

    # ------------------------------------------------------------------ Avro records

    def _valid_records(self) -> list[tuple[str, bytes]]:
        envelopes = [
            envelope(provider, body)
            for provider, bodies in self.fixtures.items()
            for body in bodies[:3]  # a few per provider are enough seeds
        ]
        records = [("raw_webhook", e.to_avro()) for e in envelopes]
        golden = FIXTURES / "golden"
        for name in SCHEMA_NAMES:
            path = golden / f"{name}.hex"
            if path.is_file():
                records.append((name, bytes.fromhex(path.read_text(encoding="ascii").strip())))
        return records

    def record(self) -> tuple[str, bytes]:
        """A damaged single-object record, labelled with the schema it claims to be."""
        r = self.rng
        name, data = r.choice(self.records)
        roll = r.random()
        if roll < 0.3:
            return name, data[: r.randrange(len(data))]  # truncated single-object record
        if roll < 0.45:
            # Another schema's fingerprint in front of this body.
            other = codec(r.choice(SCHEMA_NAMES)).header
            return name, other + data[10:]
        if roll < 0.55:
            return name, data[:2] + r.randbytes(8) + data[10:]  # unknown fingerprint
        if roll < 0.65:
            return name, codec(name).header + r.randbytes(r.randrange(64))
        if roll < 0.7:
            return name, r.randbytes(r.randrange(32))
        # Varint lengths and counts blown up in place: sizes far beyond the bytes that follow.
        buf = bytearray(self.mutate_bytes(data[10:]))
        if buf and r.random() < 0.5:
            at = r.randrange(len(buf))
            buf[at:at] = r.choice((b"\xfe\xff\xff\xff\x0f", b"\xff\xff\xff\xff\xff\xff\xff\xff\x7f", b"\x01", b"\x7f"))
        return name, data[:10] + bytes(buf)


# ---------------------------------------------------------------------------------------- campaign


@dataclasses.dataclass
class Tally:
    """What one worker saw."""

    inputs: int = 0
    outcomes: Counter[str] = dataclasses.field(default_factory=Counter)
    crashes: list[dict[str, str]] = dataclasses.field(default_factory=list)


def run_slice(args: tuple[int, int, int]) -> Tally:
    """`count` inputs from `seed`: one in `codec_every` is an Avro record, the rest webhook bodies."""
    seed, count, codec_every = args
    rng = random.Random(seed)  # noqa: S311 - reproducible test inputs, not secrets
    generator = Generator(rng, load_fixtures())
    providers = sorted(p for p in ADAPTERS if generator.fixtures[p] or generator.keys[p])
    tally = Tally()
    for index in range(count):
        check: Callable[[], str]
        if index % codec_every == 0:
            name, data = generator.record()
            target, payload, content_type = f"codec:{name}", data, "avro"
            check = functools.partial(check_record, data, name)
        else:
            provider = rng.choice(providers)
            payload, content_type = generator.body(provider)
            target = provider
            check = functools.partial(check_webhook, provider, payload, content_type)
        tally.inputs += 1
        try:
            tally.outcomes[f"{target}:{check()}"] += 1
        except Crash as exc:
            tally.outcomes[f"{target}:crash"] += 1
            if len(tally.crashes) < 50:
                tally.crashes.append(
                    {
                        "target": target,
                        "content_type": content_type,
                        "error": str(exc),
                        "traceback": "".join(traceback.format_exception(exc.__cause__ or exc))[-2000:],
                        "input_b64": base64.b64encode(payload).decode("ascii"),
                    }
                )
    return tally


def campaign(inputs: int, workers: int, seed: int, codec_every: int = 5, slice_size: int = 20_000) -> dict[str, Any]:
    """Run `inputs` inputs over `workers` processes; the figures as a dict."""
    slices = [
        (seed * 1_000_003 + i, min(slice_size, inputs - i * slice_size), codec_every)
        for i in range((inputs + slice_size - 1) // slice_size)
    ]
    started = time.perf_counter()
    total = Tally()
    with multiprocessing.get_context("spawn").Pool(workers) as pool:
        for tally in pool.imap_unordered(run_slice, slices):
            total.inputs += tally.inputs
            total.outcomes.update(tally.outcomes)
            total.crashes.extend(tally.crashes)
            sys.stderr.write(f"\r{total.inputs:,} inputs, {len(total.crashes)} crashes")
            sys.stderr.flush()
    elapsed = time.perf_counter() - started
    sys.stderr.write("\n")
    crash_count = sum(v for k, v in total.outcomes.items() if k.endswith(":crash"))
    return {
        "inputs": total.inputs,
        "seconds": round(elapsed, 1),
        "inputs_per_second": round(total.inputs / elapsed, 1),
        "workers": workers,
        "seed": seed,
        "crashes": crash_count,
        "outcomes": dict(sorted(total.outcomes.items())),
        "crash_samples": total.crashes,
    }


def main(argv: list[str] | None = None) -> int:
    """Command line: run the campaign, print the figures, write crashers; exit 1 when any input crashed."""
    parser = argparse.ArgumentParser(prog="python -m devkit.fuzz", description=__doc__.split("\n\n")[0])
    parser.add_argument("--inputs", type=int, default=1_000_000, help="how many inputs in all (default 1,000,000)")
    parser.add_argument("--workers", type=int, default=2, help="processes (default 2)")
    parser.add_argument("--seed", type=int, default=1, help="campaign seed: the same seed replays the same inputs")
    parser.add_argument("--crashers", type=Path, default=Path(".local/fuzz-crashers"), help="where crashers go")
    parser.add_argument("--report", type=Path, default=None, help="also write the figures as JSON here")
    args = parser.parse_args(argv)
    result = campaign(args.inputs, args.workers, args.seed)
    samples = result.pop("crash_samples")
    if samples:
        args.crashers.mkdir(parents=True, exist_ok=True)
        for i, sample in enumerate(samples):
            (args.crashers / f"crash-{args.seed}-{i}.json").write_text(json.dumps(sample, indent=1), encoding="utf-8")
    by_target: Counter[str] = Counter()
    for key, count in result["outcomes"].items():
        by_target[key.rpartition(":")[0]] += count
    out = sys.stdout.write
    out(
        f"fuzz: {result['inputs']:,} inputs in {result['seconds']} s ({result['inputs_per_second']:,.0f}/s)"
        f" on {result['workers']} workers, seed {result['seed']}: {result['crashes']} crashes\n"
    )
    for target, count in sorted(by_target.items()):
        outcomes = {k.rpartition(":")[2]: v for k, v in result["outcomes"].items() if k.rpartition(":")[0] == target}
        out(f"  {target:<24} {count:>9,}  {outcomes}\n")
    if samples:
        out(f"crashers written to {args.crashers}/\n")
    if args.report is not None:
        args.report.parent.mkdir(parents=True, exist_ok=True)
        args.report.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    return 1 if result["crashes"] else 0


if __name__ == "__main__":
    raise SystemExit(main())
