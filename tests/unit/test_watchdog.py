"""The recovery stall detector and the hang watch: only a recovery or agents that stop moving
while they have work count as stalled."""

from __future__ import annotations

from streams.faust_ext.watchdog import HangWatch, NoProgress, StallDetector


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


def test_no_progress_needs_that_many_unmoved_observations_in_a_row() -> None:
    watch = NoProgress(needed=3)
    assert not watch.observe(busy=True, progress=1)  # the first sight of work: nothing to compare
    assert not watch.observe(busy=True, progress=1)
    assert not watch.observe(busy=True, progress=1)
    assert watch.observe(busy=True, progress=1)


def test_progress_or_idleness_starts_the_count_again() -> None:
    watch = NoProgress(needed=2)
    watch.observe(busy=True, progress=1)
    watch.observe(busy=True, progress=1)
    assert not watch.observe(busy=True, progress=2)
    assert not watch.observe(busy=False, progress=2)
    assert not watch.observe(busy=True, progress=2)
    assert not watch.observe(busy=True, progress=2)
    assert watch.observe(busy=True, progress=2)


def test_an_agent_that_processes_nothing_while_records_wait_is_a_hang() -> None:
    watch = HangWatch(hang_after_s=10, interval_s=5)
    for _ in range(3):
        watch.observe_partitions({"events-0": 40, "signals-0": 0}, {"events-0": 7, "signals-0": 3})
    assert watch.hung is not None and "events-0: 40 records waiting" in watch.hung
    assert watch.check_loop() == watch.hung  # the watchdog thread acts on it


def test_a_slow_agent_that_keeps_processing_is_not_a_hang() -> None:
    watch = HangWatch(hang_after_s=10, interval_s=5)
    for processed in range(100):
        watch.observe_partitions({"events-0": 5000}, {"events-0": processed})
    assert watch.hung is None


def test_an_idle_worker_with_nothing_waiting_is_not_a_hang() -> None:
    watch = HangWatch(hang_after_s=10, interval_s=5)
    for _ in range(100):
        watch.observe_partitions({"events-0": 0}, {"events-0": 7})
        watch.beat()
        assert watch.check_loop() is None


def test_a_rebalance_forgets_what_was_watched() -> None:
    watch = HangWatch(hang_after_s=10, interval_s=5)
    for _ in range(2):
        watch.observe_partitions({"events-0": 40}, {"events-0": 7})
    watch.forget_partitions()
    for _ in range(2):
        watch.observe_partitions({"events-0": 40}, {"events-0": 7})
    assert watch.hung is None


def test_an_event_loop_that_stops_beating_is_a_hang_but_one_long_pause_is_not() -> None:
    watch = HangWatch(hang_after_s=10, interval_s=5)
    assert all(watch.check_loop() is None for _ in range(10))  # no beat yet: Faust's timers not started
    watch.beat()
    assert watch.check_loop() is None
    # SIGSTOP for minutes shows up as one late check: the loop beats again right after it.
    watch.beat()
    assert watch.check_loop() is None
    assert watch.check_loop() is None  # 5 s without a beat
    assert watch.check_loop() is not None  # 10 s
    assert "event loop ran no timer" in str(watch.hung)
