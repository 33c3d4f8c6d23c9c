"""What people read: the text of a notification (chat and email) and the webhook's JSON body."""

from __future__ import annotations

from typing import Any

from notifier.grouping import Notification

ICONS = {"critical": ":red_circle:", "warning": ":warning:", "info": ":information_source:"}


def severity(notification: Notification) -> str:
    """The highest severity among the alerts."""
    order = ("critical", "warning", "info")
    present = {alert.severity for alert in notification.alerts}
    return next((level for level in order if level in present), "warning")


def where(notification: Notification) -> str:
    """provider/channel of the notification, as far as the alerts say."""
    first = notification.alerts[0]
    return f"{first.provider or '-'}/{first.channel or '-'}"


def title(notification: Notification) -> str:
    """One line: what happened where."""
    if notification.grouped:
        total = len(notification.alerts)
        kinds = ", ".join(f"{count} {kind}" for kind, count in notification.counts.items())
        return f"{total} message alert{'s' if total != 1 else ''} on {where(notification)}: {kinds}"
    alert = notification.alerts[0]
    state = "RESOLVED" if alert.resolves else alert.severity.upper()
    return f"[{state}] {alert.kind} on {where(notification)}"


def text(notification: Notification, examples: int) -> str:
    """Slack-compatible text (mrkdwn); plain enough for email and other chats."""
    icon = ":white_check_mark:" if all(a.resolves for a in notification.alerts) else ICONS[severity(notification)]
    lines = [f"{icon} *{title(notification)}*"]
    shown = notification.examples(examples)
    for alert in shown:
        lines.append(f"• {alert.detail}" + (f" (campaign {alert.campaign})" if alert.campaign else ""))
    if len(notification.alerts) > len(shown):
        lines.append(f"… and {len(notification.alerts) - len(shown)} more")
    return "\n".join(lines)


def webhook_body(notification: Notification, examples: int) -> dict[str, Any]:
    """The webhook's JSON: `text` for chat incoming webhooks, the structured alerts for programs."""
    return {
        "text": text(notification, examples),
        "notification": {
            "id": notification.notification_id,
            "key": notification.key,
            "grouped": notification.grouped,
            "severity": severity(notification),
            "resolved": all(alert.resolves for alert in notification.alerts),
            "counts": notification.counts,
            "total": len(notification.alerts),
        },
        "alerts": [alert.to_dict() for alert in notification.alerts],
    }
