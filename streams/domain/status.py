"""Canonical statuses and their ranks in the join lattice (docs/architecture.md)."""

from __future__ import annotations

import enum


class Status(enum.StrEnum):
    """Canonical message status; side events carry no rank."""

    QUEUED = "queued"
    CREATED = "created"
    SENT = "sent"
    FAILED = "failed"
    DELIVERED = "delivered"
    READ = "read"
    # Side events: they annotate or alert, they never change a message's rank.
    DELETED = "deleted"
    WARNING = "warning"
    CANCELED = "canceled"
    RETRYING = "retrying"

    @property
    def rank(self) -> int:
        """Position in the lattice; 0 for side events."""
        return _RANKS.get(self, 0)

    @property
    def is_side_event(self) -> bool:
        """True for statuses that annotate but never move a message."""
        return self not in _RANKS


class FailureReason(enum.StrEnum):
    """Why a message failed (providers' codes: streams/adapters/error_codes/)."""

    ERROR = "error"
    NOT_FOUND = "not_found"  # the number does not exist or cannot receive WhatsApp
    EXPIRED = "expired"  # its validity or the 24-hour customer window ran out
    REJECTED = "rejected"  # refused: opt-out, block, policy
    # A sending limit withheld it: throughput, pair rate, Meta's per-user marketing limit
    # (131049). Retrying later may succeed; retrying at once does not.
    RATE_LIMITED = "rate_limited"


_RANKS: dict[Status, int] = {
    Status.QUEUED: 10,
    Status.CREATED: 20,
    Status.SENT: 30,
    Status.FAILED: 35,
    Status.DELIVERED: 40,
    Status.READ: 50,
}

# The ranked statuses in lattice order, lowest first.
RANKED: tuple[Status, ...] = tuple(sorted(_RANKS, key=_RANKS.__getitem__))
