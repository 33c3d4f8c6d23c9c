"""Check the adapters against payloads written by others, kept outside the repository: not a test.

The folder holds the payloads and an `expected.tsv` (file, provider, id, expect); nothing in
the repository ships one, so no test reads it. Run this by hand, naming the folder:

    .venv/bin/python -m devkit.outside_cases FOLDER
"""

from __future__ import annotations

import csv
import sys
from pathlib import Path

from schemas.envelope import RawWebhook
from streams.adapters.registry import ADAPTERS
from streams.core.normalizer import Normalized, normalize

CONTENT_TYPES = {"json": "application/json", "form": "application/x-www-form-urlencoded"}


def verdict(result: Normalized, message_id: str, expect: str) -> tuple[bool, str]:
    """(passed, what the pipeline made of the case)."""
    if result.outcome == "dead_lettered":
        reasons = (
            [result.dead_letter_reason]
            if result.dead_letter_reason
            else [r.dead_letter_reason for r in result.rejected]
        )
        return expect == "dlq", f"dlq: {'; '.join(reasons)}"
    if result.outcome == "ignored":
        return expect == "ignored", "ignored"
    statuses = sorted({e.status.value for e in result.events if e.message_id == message_id})
    # Several reports of one message in a POST fold to the highest rank: compare that.
    top = max((e for e in result.events if e.message_id == message_id), key=lambda e: e.status.rank, default=None)
    return top is not None and top.status.value == expect, f"statuses {statuses}"


def main(argv: list[str]) -> int:
    """Print one line per case and exit 1 when any case disagrees with expected.tsv (2: no folder)."""
    if len(argv) != 1:
        sys.stderr.write("usage: python -m devkit.outside_cases FOLDER (payloads and their expected.tsv)\n")
        return 2
    folder = Path(argv[0])
    failures = 0
    with (folder / "expected.tsv").open(encoding="utf-8") as fh:
        for row in csv.DictReader(fh, delimiter="\t"):
            if row["provider"] not in ADAPTERS:
                sys.stdout.write(f"SKIP  {row['file']}: no {row['provider']} adapter\n")
                continue
            path = folder / row["file"]
            raw = RawWebhook(
                request_id="outside",
                provider=row["provider"],
                channel="default",
                received_at=1_700_000_000_000,
                content_type=CONTENT_TYPES[path.suffix.lstrip(".")],
                url=f"http://127.0.0.1/webhooks/{row['provider']}",
                body=path.read_bytes(),
            )
            ok, seen = verdict(normalize(raw.to_avro()), row["id"], row["expect"])
            failures += not ok
            sys.stdout.write(f"{'ok  ' if ok else 'FAIL'}  {row['file']}: expected {row['expect']}, got {seen}\n")
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
