"""The recovery stall detector: only a recovery that stops moving counts as stalled."""

from __future__ import annotations

from streams.watchdog import StallDetector


def test_a_recovery_without_progress_stalls_after_the_threshold() -> None:
    detector = StallDetector(stall_after_s=60)
    assert not detector.stalled(0, recovering=True, progress=(1, 2))
    assert not detector.stalled(59, recovering=True, progress=(1, 2))
    assert detector.stalled(60, recovering=True, progress=(1, 2))


def test_progress_restarts_the_clock() -> None:
    detector = StallDetector(stall_after_s=60)
    detector.stalled(0, recovering=True, progress=(1,))
    assert not detector.stalled(50, recovering=True, progress=(2,))
    assert not detector.stalled(100, recovering=True, progress=(2,))
    assert detector.stalled(110, recovering=True, progress=(2,))


def test_a_long_recovery_that_keeps_moving_never_stalls() -> None:
    detector = StallDetector(stall_after_s=60)
    assert not any(detector.stalled(t, recovering=True, progress=t) for t in range(0, 3600, 5))


def test_leaving_recovery_resets_the_detector() -> None:
    detector = StallDetector(stall_after_s=60)
    detector.stalled(0, recovering=True, progress=(1,))
    assert not detector.stalled(30, recovering=False, progress=(1,))
    assert not detector.stalled(80, recovering=True, progress=(1,))
    assert detector.stalled(140, recovering=True, progress=(1,))
