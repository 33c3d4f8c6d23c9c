"""Rejections of requests, mapped to JSON error responses in one middleware."""

from __future__ import annotations

from schemas.errors import StatusflowError


class Rejected(StatusflowError):
    """A request refused with an HTTP status and a short reason."""

    def __init__(
        self,
        status: int,
        reason: str,
        *,
        provider: str | None = None,
        retry_after: int | None = None,
        allow: str | None = None,
    ) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason
        self.provider = provider
        self.retry_after = retry_after
        self.allow = allow  # the Allow header of a 405
