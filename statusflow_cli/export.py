"""`statusflow export-parquet`: land wa.status.changes, wa.metrics and wa.funnel as date-partitioned Parquet."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
from pathlib import Path
from typing import TYPE_CHECKING

from aiokafka.errors import KafkaConnectionError

from schemas.errors import MissingExtra
from schemas.settings import KafkaSettings
from statusflow_cli.console import EXIT_USAGE, CliError, Unreachable, progress, say

if TYPE_CHECKING:
    from statusflow_consumer.export import ParquetExport

# statusflow_consumer.export.MAX_BATCH_RECORDS (a unit test keeps them equal): that module needs
# pyarrow (the `analytics` extra), which only this command may ask for, not every CLI start.
MAX_BATCH_RECORDS = 500_000


async def _run(export: ParquetExport) -> None:
    loop = asyncio.get_running_loop()
    # SIGTERM and Ctrl-C end the run cleanly: what is buffered is written and committed.
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, export.stop)
    await export.run()


def cmd_export(args: argparse.Namespace) -> int:
    """Run the Parquet sink until stopped (or until caught up with --until-end)."""
    try:
        from statusflow_consumer.export import ExportError, ExportSettings, ParquetExport  # noqa: PLC0415
    except MissingExtra as exc:
        raise CliError(str(exc), EXIT_USAGE) from exc
    kafka = KafkaSettings()
    try:
        settings = ExportSettings(
            bootstrap_servers=kafka.bootstrap_servers,
            topics=(kafka.topics.changes, kafka.topics.metrics, kafka.topics.funnel),
            out=Path(args.out),
            group_id=args.group,
            batch_records=args.batch_records,
            flush_interval_s=args.flush_interval,
            until_end=args.until_end,
        )
    except ExportError as exc:
        raise CliError(str(exc), EXIT_USAGE) from exc
    if args.verbose:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    with progress("export-parquet: records", None) as bar:
        export = ParquetExport(settings, on_progress=lambda stats: bar.update(stats.records))
        try:
            asyncio.run(_run(export))
        except KafkaConnectionError as exc:
            raise Unreachable("broker", kafka.bootstrap_servers, exc) from exc
        except ExportError as exc:
            raise CliError(str(exc)) from exc
    say(f"exported {export.stats.records} records in {export.stats.files} files under {args.out}")
    return 0


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """The `export-parquet` subcommand."""
    parser = sub.add_parser(
        "export-parquet",
        help="land wa.status.changes, wa.metrics and wa.funnel as date-partitioned Parquet files",
        description="A restartable sink: topic=<topic>/date=<YYYY-MM-DD>/part-<partition>-<first>-<last>.parquet, "
        "offsets committed only after each file is fsynced; a rerun neither loses nor duplicates "
        "records (docs/analytics.md).",
    )
    parser.add_argument("--out", required=True, help="output directory (one export process per directory)")
    parser.add_argument("--group", default="statusflow-export-parquet", help="consumer group keeping the offsets")
    parser.add_argument(
        "--batch-records",
        type=int,
        default=50_000,
        help=f"records per file at most (50000, at most {MAX_BATCH_RECORDS})",
    )
    parser.add_argument("--flush-interval", type=float, default=30.0, help="seconds a record waits for its file (30)")
    parser.add_argument("--until-end", action="store_true", help="stop once caught up with the topics' ends at start")
    parser.add_argument("--verbose", action="store_true", help="log every file written")
    parser.set_defaults(func=cmd_export)
