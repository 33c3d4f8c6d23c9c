"""Fixtures of the chaos scenarios, and the figures table printed at the end of the session."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from tests.chaos.harness import Figures, Stack, finish, make_stack

FIGURES = pytest.StashKey[list[Figures]]()


@pytest.fixture
async def stack(
    kafka_bootstrap: str, unique_id: str, tmp_path: Path, request: pytest.FixtureRequest
) -> AsyncIterator[Stack]:
    """Receivers and workers on the session's broker; all stopped at the end."""
    built = make_stack(kafka_bootstrap, unique_id, tmp_path)
    yield built
    await finish(built, request)


@pytest.fixture
def record_figures(request: pytest.FixtureRequest) -> Callable[[Figures], None]:
    """Print a scenario's figures in one line and keep them for the session's summary table."""

    def record(figures: Figures) -> None:
        print(figures.line())  # noqa: T201 - the figures are the scenario's report (shown with -rA)
        request.config.stash.setdefault(FIGURES, []).append(figures)

    return record


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter, config: pytest.Config) -> None:
    """A small table of every scenario's figures, so that CI output shows them."""
    rows = config.stash.get(FIGURES, [])
    if not rows:
        return
    terminalreporter.section("chaos figures")
    terminalreporter.write_line(
        f"{'scenario':<34}{'sent':>6}{'acked':>7}{'found':>7}{'lost':>6}"
        f"{'dup ids':>9}{'repeats':>9}{'changes':>9}{'alerts':>8}{'s':>6}"
    )
    for f in rows:
        terminalreporter.write_line(
            f"{f.scenario:<34}{f.sent:>6}{f.acknowledged:>7}{f.found:>7}{f.lost:>6}{f.duplicate_ids:>9}{f.repeats:>9}"
            f"{f.changes:>9}{f.alerts:>8}{f.seconds:>6.0f}  {f.note}"
        )
