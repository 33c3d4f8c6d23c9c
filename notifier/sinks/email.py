"""Email over SMTP (aiosmtplib): STARTTLS or implicit TLS, and login, when configured."""

from __future__ import annotations

from email.message import EmailMessage

import aiosmtplib

from notifier.grouping import Notification
from notifier.rendering import text, title
from notifier.settings import EmailSinkConfig, NotifySettings
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

    def __init__(self, config: EmailSinkConfig, settings: NotifySettings) -> None:
        self.name = config.name
        self._config = config
        self._examples = settings.group_examples
        self._timeout_s = settings.timeout_s(config)

    async def deliver(self, notification: Notification) -> None:
        """One attempt."""
        c = self._config
        mail = message(notification, c.sender, list(c.to), self._examples)
        try:
            await aiosmtplib.send(
                mail,
                hostname=c.host,
                port=c.port,
                use_tls=c.tls,
                start_tls=c.starttls if not c.tls else False,
                username=c.username,
                password=c.password.get_secret_value() if c.password else None,
                validate_certs=c.validate_certs,
                timeout=self._timeout_s,
            )
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            raise SinkError(f"{self.name}: smtp {c.host}:{c.port}: {type(exc).__name__}: {exc}") from exc

    async def close(self) -> None:
        """Nothing held between sends."""
