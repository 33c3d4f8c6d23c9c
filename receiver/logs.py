"""Structured logs: one JSON object per line, the request id attached, phone numbers masked."""

from __future__ import annotations

import contextvars
import datetime
import logging
import re
from typing import Literal

import orjson
from aiohttp import web
from aiohttp.abc import AbstractAccessLogger

REQUEST_ID_VAR: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id", default=None)

# E.164-like runs of digits (a recipient's number, with or without "+"), not inside a longer token.
_NUMBER = re.compile(r"(?<![0-9A-Za-z_.-])(\+?)(\d{6,11})(\d{4})(?![0-9A-Za-z_])")


def mask_numbers(text: str) -> str:
    """`+5511987654321` → `+*********4321`: only the last four digits stay readable."""
    return _NUMBER.sub(lambda m: m.group(1) + "*" * len(m.group(2)) + m.group(3), text)


class JsonFormatter(logging.Formatter):
    """A JSON object per record: time, level, logger, message, request_id, exception."""

    def format(self, record: logging.LogRecord) -> str:
        """The record as one line of JSON, numbers masked."""
        entry: dict[str, object] = {
            "ts": datetime.datetime.fromtimestamp(record.created, tz=datetime.UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": mask_numbers(record.getMessage()),
        }
        request_id = REQUEST_ID_VAR.get()
        if request_id is not None:
            entry["request_id"] = request_id
        if record.exc_info:
            entry["exception"] = mask_numbers(self.formatException(record.exc_info))
        return orjson.dumps(entry).decode()


class MaskingFormatter(logging.Formatter):
    """The plain text format, numbers masked and the request id appended when there is one."""

    def format(self, record: logging.LogRecord) -> str:
        """The usual line, masked."""
        line = super().format(record)
        request_id = REQUEST_ID_VAR.get()
        return mask_numbers(f"{line} request_id={request_id}" if request_id else line)


def configure_logging(level: str, style: Literal["json", "text"]) -> None:
    """Root logging for the receiver process (called once, by the entry point)."""
    handler = logging.StreamHandler()
    formatter = (
        JsonFormatter() if style == "json" else MaskingFormatter("%(asctime)s %(levelname)s %(name)s %(message)s")
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
