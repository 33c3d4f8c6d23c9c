"""`statusflow notify`: deliver wa.alerts to the configured sinks (python -m notifier with flags)."""

from __future__ import annotations

import argparse
from typing import Any

from pydantic import ValidationError

from statusflow_cli.console import EXIT_USAGE, CliError


def cmd_notify(args: argparse.Namespace) -> int:
    """Run the notifier until Ctrl-C; flags override the STATUSFLOW_NOTIFY_* settings."""
    # Imported here: the other commands need neither the notifier nor its sinks.
    from notifier.__main__ import main  # noqa: PLC0415
    from notifier.settings import NotifySettings  # noqa: PLC0415

    overrides: dict[str, Any] = {}
    for flag, field in (("webhook_url", "webhook_url"), ("alertmanager_url", "alertmanager_url"), ("port", "port")):
        if getattr(args, flag) is not None:
            overrides[field] = getattr(args, flag)
    try:
        settings = NotifySettings(**overrides)
    except (ValidationError, ValueError) as exc:
        raise CliError(f"notifier settings: {exc}", EXIT_USAGE) from exc
    main(settings)
    return 0


def add_parser(sub: Any) -> None:
    """Register the subcommand on the CLI's subparsers."""
    parser = sub.add_parser(
        "notify",
        help="tell people about alerts: Alertmanager, a chat/HTTP webhook, email (docs/notifier.md)",
        description="Consume wa.alerts in the notifier's own group and deliver grouped, deduplicated "
        "notifications to the configured sinks (STATUSFLOW_NOTIFY_*; routes in STATUSFLOW_NOTIFY_FILE).",
    )
    parser.add_argument("--webhook-url", help="JSON POST with a Slack-compatible text (STATUSFLOW_NOTIFY_WEBHOOK_URL)")
    parser.add_argument("--alertmanager-url", help="Alertmanager base URL (STATUSFLOW_NOTIFY_ALERTMANAGER_URL)")
    parser.add_argument("--port", type=int, help="GET /metrics and /healthz port (STATUSFLOW_NOTIFY_PORT, 8095)")
    parser.set_defaults(func=cmd_notify)
