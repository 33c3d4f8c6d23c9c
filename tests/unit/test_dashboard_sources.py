"""Consumer lag and receiver request rates as the dashboard computes them (pure)."""

from __future__ import annotations

import pytest
from prometheus_client import generate_latest

from dashboard.lag import group_lag, lag_view
from dashboard.requests import RequestHistory, Scrape, request_counts
from receiver.observability import ReceiverMetrics


def test_lag_is_end_minus_committed_and_uncommitted_partitions_count_from_the_start() -> None:
    ends = {("raw", 0): 100, ("raw", 1): 50, ("raw", 2): 7, ("other", 0): 9}
    begins = {("raw", 0): 0, ("raw", 1): 0, ("raw", 2): 2, ("other", 0): 0}
    committed = {("raw", 0): 90, ("raw", 1): 50}
    rows = group_lag("g-normalize", ends, committed, begins)
    assert rows == [{"group": "g-normalize", "topic": "raw", "lag": 10 + 0 + 5, "partitions": 3}]
    view = lag_view(rows, ["g-normalize", "g"], error=None, at=5)
    assert (view["total"], view["idle_groups"]) == (15, ["g"])


def _exposition(counts: dict[tuple[str, str, str], int]) -> str:
    metrics = ReceiverMetrics.create()
    for labels, n in counts.items():
        metrics.requests.labels(*labels).inc(n)
    return generate_latest(metrics.registry).decode()


def test_request_counts_read_the_receivers_own_exposition() -> None:
    text = _exposition({("meta", "main", "200"): 3, ("twilio", "sms", "401"): 1})
    assert request_counts(text) == {("meta", "main", "200"): 3.0, ("twilio", "sms", "401"): 1.0}
    assert request_counts("# nothing here\n") == {}


def test_rates_come_from_consecutive_scrapes_and_a_restart_counts_from_zero() -> None:
    url = "http://r/metrics"
    history = RequestHistory(keep=3)
    history.add(Scrape(at=0.0, counts={url: {("meta", "main", "200"): 10.0}}))
    assert history.view()["rate"] is None  # one scrape: no interval yet
    history.add(Scrape(at=2.0, counts={url: {("meta", "main", "200"): 30.0, ("meta", "main", "401"): 2.0}}))
    view = history.view()
    assert view["rate"] == pytest.approx(11.0)  # (20 + 2) / 2 s
    assert view["by_code"] == {"200": {"total": 30.0, "rate": 10.0}, "401": {"total": 2.0, "rate": 1.0}}
    assert view["by_provider"]["meta"]["total"] == 32.0
    history.add(Scrape(at=4.0, counts={url: {("meta", "main", "200"): 4.0}}))  # the receiver restarted
    assert history.view()["rate"] == pytest.approx(2.0)
    history.add(Scrape(at=6.0, counts={url: None}))  # it did not answer
    view = history.view()
    assert view["targets"] == [{"url": url, "up": False}]
    assert view["rate"] == 0
    assert len(view["history"]) == 2  # keep=3 scrapes: two intervals


def test_several_receivers_add_up() -> None:
    a, b = "http://a/metrics", "http://b/metrics"
    history = RequestHistory()
    history.add(Scrape(at=0.0, counts={a: {("meta", "main", "200"): 0.0}, b: {("meta", "main", "200"): 0.0}}))
    history.add(Scrape(at=1.0, counts={a: {("meta", "main", "200"): 3.0}, b: {("meta", "main", "200"): 4.0}}))
    view = history.view()
    assert (view["total"], view["rate"]) == (7.0, 7.0)
