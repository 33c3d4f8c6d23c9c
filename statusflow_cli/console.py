"""What the CLI shows a person: progress bars on a terminal, one-line errors with an exit code.

Progress bars are drawn only when stderr is a terminal and rich (the `terminal` extra) is
installed; piped or captured output gets the plain result lines and nothing else, so scripts
and tests read clean text. Without rich a terminal gets the plain lines too, and one line on
stderr saying how to get the bars.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from typing import TYPE_CHECKING, Protocol, cast

from schemas.errors import MissingExtra, StatusflowError

if TYPE_CHECKING:
    from rich.progress import Progress, TaskID

# Exit codes of every command, documented in docs/runbook.md.
EXIT_FAILED = 1  # the command ran and found something wrong (e.g. a check did not pass)
EXIT_USAGE = 2  # bad arguments or configuration
EXIT_UNREACHABLE = 3  # the broker, receiver or worker could not be reached


class CliError(StatusflowError):
    """An error the CLI reports as one line on stderr with its exit code, never a traceback."""

    def __init__(self, message: str, exit_code: int = EXIT_FAILED) -> None:
        super().__init__(message)
        self.exit_code = exit_code


class Unreachable(CliError):
    """A service the command needs did not answer."""

    def __init__(self, what: str, where: str, cause: object) -> None:
        super().__init__(f"cannot reach the {what} at {where} ({cause})", EXIT_UNREACHABLE)


class Tracker(Protocol):
    """What a long operation reports its progress to."""

    def advance(self, amount: int = 1) -> None:
        """Count `amount` more units done."""

    def update(self, completed: int, total: int | None = None) -> None:
        """Set the units done (and the total when it became known)."""


class _Bar:
    def __init__(self, progress: Progress | None, task: TaskID) -> None:
        self._progress = progress
        self._task = task

    def advance(self, amount: int = 1) -> None:
        if self._progress is not None:
            self._progress.advance(self._task, amount)

    def update(self, completed: int, total: int | None = None) -> None:
        if self._progress is not None:
            self._progress.update(self._task, completed=completed, total=total)


def interactive() -> bool:
    """Whether progress bars are wanted: stderr is a terminal."""
    return sys.stderr.isatty()


@contextlib.contextmanager
def progress(description: str, total: int | None, *, enabled: bool | None = None) -> Iterator[Tracker]:
    """A progress bar on stderr for the duration of the block; a silent tracker when not a TTY."""
    if not (interactive() if enabled is None else enabled):
        yield _Bar(None, cast("TaskID", 0))
        return
    try:
        from rich.console import Console  # noqa: PLC0415 - an optional extra, only for a terminal
        from rich.progress import (  # noqa: PLC0415
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
        )
    except ModuleNotFoundError:
        complain(f"{MissingExtra('rich', 'terminal', 'A progress bar')} (going on without one)")
        yield _Bar(None, cast("TaskID", 0))
        return
    bar = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=Console(stderr=True),
        transient=False,
    )
    with bar:
        yield _Bar(bar, bar.add_task(description, total=total))


def say(line: str) -> None:
    """One result line on stdout, flushed (consumers of the output may be waiting for it)."""
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def complain(line: str) -> None:
    """One line on stderr."""
    sys.stderr.write(f"statusflow: {line}\n")
    sys.stderr.flush()
