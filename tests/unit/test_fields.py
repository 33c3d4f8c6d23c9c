"""Provider times in every unit become one UTC millisecond value."""

from __future__ import annotations

import pytest

from streams.adapters._fields import event_time, to_epoch_ms
from streams.adapters.base import UnparseableWebhook

MS = 1_750_030_073_000


@pytest.mark.parametrize(
    "value",
    [
        1_750_030_073,
        "1750030073",
        MS,
        str(MS),
        1_750_030_073.0,
        "2025-06-15T23:27:53Z",
        "2025-06-15T23:27:53.000+00:00",
        "2025-06-15T20:27:53.000-0300",
        "2025-06-16T02:27:53+03:00",
    ],
)
def test_every_unit_and_offset_gives_the_same_instant(value: object) -> None:
    assert to_epoch_ms(value, "t") == MS


@pytest.mark.parametrize("value", ["yesterday", "2025-06-15T23:27:53", -5, True, [], "nan"])
def test_unreadable_or_zoneless_times_are_refused(value: object) -> None:
    with pytest.raises(UnparseableWebhook, match=r"^t "):
        to_epoch_ms(value, "t")


def test_missing_time_falls_back_to_receipt_and_is_flagged() -> None:
    assert event_time(None, 42, "t") == (42, True)
    assert event_time("", 42, "t") == (42, True)
    assert event_time("1750030073", 42, "t") == (MS, False)
