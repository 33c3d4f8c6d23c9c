"""`statusflow dashboard`: serve the live dashboard page (python -m dashboard with flags)."""

from __future__ import annotations

import argparse
from typing import Any


def cmd_dashboard(args: argparse.Namespace) -> int:
    """Serve the dashboard until Ctrl-C; flags override the STATUSFLOW_DASHBOARD_* settings."""
    # Imported here: the other commands need neither aiohttp's server nor the dashboard.
    from dashboard.__main__ import main  # noqa: PLC0415
    from dashboard.settings import DashboardSettings  # noqa: PLC0415

    overrides: dict[str, Any] = {}
    if args.host is not None:
        overrides["dashboard_host"] = args.host
    if args.port is not None:
        overrides["dashboard_port"] = args.port
    if args.receiver_metrics is not None:
        overrides["dashboard_receiver_metrics"] = args.receiver_metrics
    if args.channels_file is not None:
        overrides["channels_file"] = args.channels_file
    main(DashboardSettings(**overrides))
    return 0


def add_parser(sub: Any) -> None:
    """Register the subcommand on the CLI's subparsers."""
    parser = sub.add_parser(
        "dashboard",
        help="serve the live dashboard (funnel, rates, latency, alerts, lag, receiver requests)",
        description="Serve the dashboard page on STATUSFLOW_DASHBOARD_HOST:STATUSFLOW_DASHBOARD_PORT "
        "(default http://127.0.0.1:8090/); it reads wa.metrics, wa.alerts and wa.webhooks.dlq, the worker's "
        "consumer lag and the receivers' /metrics.",
    )
    parser.add_argument("--host", help="address to bind (STATUSFLOW_DASHBOARD_HOST, default 127.0.0.1)")
    parser.add_argument("--port", type=int, help="port (STATUSFLOW_DASHBOARD_PORT, default 8090)")
    parser.add_argument(
        "--receiver-metrics",
        help="comma-separated receiver /metrics URLs (STATUSFLOW_DASHBOARD_RECEIVER_METRICS)",
    )
    parser.add_argument(
        "--channels-file",
        help="the channels file (STATUSFLOW_CHANNELS_FILE): with [[tenants]] the page asks for an API token "
        "and shows a tenant its channels only",
    )
    parser.set_defaults(func=cmd_dashboard)
