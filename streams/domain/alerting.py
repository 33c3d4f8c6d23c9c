"""Alert rules that look at one message: failures, numbers not found, expiry, anomalies.

Each alert has a deterministic id (message key, kind and the failure report), so a repeat
after a crash is recognisable by consumers.
"""

from __future__ import annotations

import dataclasses
import hashlib

from streams.domain.lattice import MessageState
from streams.domain.status import FailureReason

KIND_BY_REASON = {
    FailureReason.ERROR: "message_failed",
    FailureReason.REJECTED: "message_failed",
    FailureReason.NOT_FOUND: "number_not_found",
    FailureReason.EXPIRED: "message_expired",
    FailureReason.RATE_LIMITED: "message_failed",
}


def alert_id(*parts: object) -> str:
    """A short stable digest of what identifies an alert."""
    return hashlib.blake2b("|".join(map(str, parts)).encode(), digest_size=12).hexdigest()


@dataclasses.dataclass(frozen=True, slots=True)
class AlertSpec:
    """Everything an Alert record carries; `to_record` fills the schema's fields."""

    kind: str
    severity: str
    detail: str
    occurred_at: int
    alert_key: str
    id_parts: tuple[object, ...]
    provider: str | None = None
    channel: str | None = None
    campaign: str | None = None
    message_key: str | None = None
    error_code: str | None = None
    error_title: str | None = None
    state: str = "firing"
    window_start: int | None = None
    window_end: int | None = None
    count: int = 1
    value: float | None = None
    threshold: float | None = None

    @property
    def per_message(self) -> bool:
        """Per-message alerts are rate-limited per channel; channel alerts are not."""
        return self.message_key is not None

    def to_record(self) -> dict[str, object]:
        """The Alert record (schemas/alert.avsc)."""
        record = dataclasses.asdict(self)
        record.pop("id_parts")
        record["alert_id"] = alert_id(*self.id_parts)
        return record


def message_alerts(before: MessageState | None, after: MessageState) -> list[AlertSpec]:
    """Alerts that a change of one message raises."""
    failure = after.failure
    if failure is None:
        return []

    def spec(kind: str, detail: str, id_parts: tuple[object, ...]) -> AlertSpec:
        return AlertSpec(
            kind=kind,
            severity="warning",
            detail=detail,
            occurred_at=failure.at,
            alert_key=f"{kind}:{after.message_key}",
            id_parts=id_parts,
            provider=after.provider,
            channel=after.channel,
            campaign=after.campaign,
            message_key=after.message_key,
            error_code=failure.error_code,
            error_title=failure.error_title,
        )

    alerts: list[AlertSpec] = []
    kind = KIND_BY_REASON[failure.reason]
    # One alert per message and kind, whichever failure report arrives first: the id leaves
    # the report out so that a different arrival order still yields the same id.
    if before is None or before.failure is None or KIND_BY_REASON[before.failure.reason] != kind:
        title = f": {failure.error_title}" if failure.error_title else ""
        detail = f"{after.message_key} {kind.replace('_', ' ')} (code {failure.error_code or 'none'}){title}"
        alerts.append(spec(kind, detail, (after.message_key, kind)))
    if after.anomaly and not (before is not None and before.anomaly):
        detail = f"{after.message_key} reported failed after it was delivered"
        alerts.append(spec("failure_after_delivery", detail, (after.message_key, "failure_after_delivery")))
    return alerts
