"""Run examples/analytics.sql with DuckDB over an export directory and print the table.

python examples/analytics.py export/            # the --out of statusflow export-parquet
python examples/analytics.py export/ --funnel-topic wa.funnel
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from schemas.errors import MissingExtra

try:
    import duckdb
except ModuleNotFoundError as exc:
    raise MissingExtra("duckdb", "analytics", "examples/analytics.py") from exc

QUERY = Path(__file__).with_name("analytics.sql")


def campaign_rates(out: Path, funnel_topic: str = "wa.funnel") -> list[tuple[Any, ...]]:
    """(campaign, day, attempted, delivered, read, failed, pending, delivery_rate, read_rate,
    failure_rate) rows of the example query: send-cohort rates per campaign per day."""
    files = str(out / f"topic={funnel_topic}" / "date=*" / "*.parquet").replace("'", "''")
    with duckdb.connect() as con:
        # A path, its quotes doubled: DuckDB takes no parameters in a view's table function.
        view = f"CREATE VIEW funnel AS SELECT * FROM read_parquet('{files}', hive_partitioning = true)"  # noqa: S608
        con.execute(view)
        return con.execute(QUERY.read_text(encoding="utf-8")).fetchall()


def main() -> int:
    """Print the rates as a small table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, help="the export directory")
    parser.add_argument("--funnel-topic", default="wa.funnel")
    args = parser.parse_args()
    counts = ("attempted", "deliv.", "read", "failed", "pending")
    rates = ("deliv.%", "read%", "fail.%")
    sys.stdout.write(f"{'campaign':20} {'day':10} " + " ".join(f"{c:>9}" for c in counts + rates) + "\n")
    for campaign, day, *numbers in campaign_rates(args.out, args.funnel_topic):
        cells = [f"{n:>9}" for n in numbers[:5]]
        cells += [f"{r:>9.1%}" if r is not None else f"{'-':>9}" for r in numbers[5:]]
        sys.stdout.write(f"{campaign:20} {day!s:10} " + " ".join(cells) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
