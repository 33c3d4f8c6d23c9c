"""Email over SMTP (aiosmtplib): STARTTLS or implicit TLS, and login, when configured."""

from __future__ import annotations

from email.message import EmailMessage

import aiosmtplib

from notifier.grouping import Notification
from notifier.rendering import text, title
from notifier.settings import NotifySettings, SinkName
from notifier.sinks.base import SinkError


def message(notification: Notification, sender: str, recipients: list[str], examples: int) -> EmailMessage:
    """The email of one notification."""
    mail = EmailMessage()
    mail["From"] = sender
    mail["To"] = ", ".join(recipients)
    mail["Subject"] = f"[statusflow] {title(notification)}"
    mail["Message-ID"] = f"<{notification.notification_id}@statusflow>"
    mail.set_content(text(notification, examples))
    return mail


class EmailSink:
    """One email per notification."""

    name: SinkName = "email"

    def __init__(self, settings: NotifySettings) -> None:
        assert settings.smtp_host
        self._settings = settings

    async def deliver(self, notification: Notification) -> None:
        """One attempt."""
        s = self._settings
        assert s.smtp_host
        mail = message(notification, s.email_from, s.recipients(), s.group_examples)
        try:
            await aiosmtplib.send(
                mail,
                hostname=s.smtp_host,
                port=s.smtp_port,
                use_tls=s.smtp_tls,
                start_tls=s.smtp_starttls if not s.smtp_tls else False,
                username=s.smtp_username,
                password=s.smtp_password.get_secret_value() if s.smtp_password else None,
                validate_certs=s.smtp_validate_certs,
                timeout=s.sink_timeout_s,
            )
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            raise SinkError(f"smtp {s.smtp_host}:{s.smtp_port}: {type(exc).__name__}: {exc}") from exc

    async def close(self) -> None:
        """Nothing held between sends."""
