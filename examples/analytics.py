"""Run examples/analytics.sql with DuckDB over an export directory and print the table.

python examples/analytics.py export/            # the --out of statusflow export-parquet
python examples/analytics.py export/ --metrics-topic wa.metrics
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import duckdb

QUERY = Path(__file__).with_name("analytics.sql")


def campaign_rates(out: Path, metrics_topic: str = "wa.metrics") -> list[tuple[Any, ...]]:
    """(campaign, day, sent, delivered, read, delivery_rate, read_rate) rows of the example query."""
    files = str(out / f"topic={metrics_topic}" / "date=*" / "*.parquet").replace("'", "''")
    with duckdb.connect() as con:
        # A path, its quotes doubled: DuckDB takes no parameters in a view's table function.
        view = f"CREATE VIEW metrics AS SELECT * FROM read_parquet('{files}', hive_partitioning = true)"  # noqa: S608
        con.execute(view)
        return con.execute(QUERY.read_text(encoding="utf-8")).fetchall()


def main() -> int:
    """Print the rates as a small table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, help="the export directory")
    parser.add_argument("--metrics-topic", default="wa.metrics")
    args = parser.parse_args()
    sys.stdout.write(f"{'campaign':20} {'day':10} {'sent':>6} {'deliv.':>6} {'read':>6} {'deliv.%':>8} {'read%':>8}\n")
    for campaign, day, sent, delivered, read, delivery_rate, read_rate in campaign_rates(args.out, args.metrics_topic):
        rates = [f"{rate:8.1%}" if rate is not None else f"{'-':>8}" for rate in (delivery_rate, read_rate)]
        sys.stdout.write(f"{campaign:20} {day!s:10} {sent:6} {delivered:6} {read:6} {' '.join(rates)}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
