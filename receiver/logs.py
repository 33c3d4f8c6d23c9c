"""Structured logs: one JSON object per line, the request id attached, phone numbers masked."""

from __future__ import annotations

import contextvars
import datetime
import logging
from typing import Literal

import orjson
from aiohttp import web
from aiohttp.abc import AbstractAccessLogger

from schemas.privacy import Privacy

REQUEST_ID_VAR: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id", default=None)

MASK = Privacy("mask")


class JsonFormatter(logging.Formatter):
    """A JSON object per record: time, level, logger, message, request_id, exception."""

    def __init__(self, privacy: Privacy = MASK) -> None:
        super().__init__()
        self._privacy = privacy

    def format(self, record: logging.LogRecord) -> str:
        """The record as one line of JSON, numbers masked."""
        entry: dict[str, object] = {
            "ts": datetime.datetime.fromtimestamp(record.created, tz=datetime.UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": self._privacy.log_text(record.getMessage()),
        }
        request_id = REQUEST_ID_VAR.get()
        if request_id is not None:
            entry["request_id"] = request_id
        if record.exc_info:
            entry["exception"] = self._privacy.log_text(self.formatException(record.exc_info))
        return orjson.dumps(entry).decode()


class MaskingFormatter(logging.Formatter):
    """The plain text format, numbers masked and the request id appended when there is one."""

    def __init__(self, fmt: str, privacy: Privacy = MASK) -> None:
        super().__init__(fmt)
        self._privacy = privacy

    def format(self, record: logging.LogRecord) -> str:
        """The usual line, masked."""
        line = super().format(record)
        request_id = REQUEST_ID_VAR.get()
        return self._privacy.log_text(f"{line} request_id={request_id}" if request_id else line)


def configure_logging(level: str, style: Literal["json", "text"], privacy: Privacy = MASK) -> None:
    """Root logging for the receiver process (called once, by the entry point)."""
    handler = logging.StreamHandler()
    formatter = (
        JsonFormatter(privacy)
        if style == "json"
        else MaskingFormatter("%(asctime)s %(levelname)s %(name)s %(message)s", privacy)
    )
    handler.setFormatter(formatter)
    logging.basicConfig(level=level.upper(), handlers=[handler], force=True)


class AccessLogger(AbstractAccessLogger):
    """One line per request without the query string: Meta's handshake carries hub.verify_token there."""

    def log(self, request: web.BaseRequest, response: web.StreamResponse, time: float) -> None:
        """`remote "METHOD /path" status bytes ms`, never the query."""
        self.logger.info(
            '%s "%s %s" %s %s %.1fms',
            request.remote,
            request.method,
            request.path,
            response.status,
            response.body_length,
            time * 1000,
        )
