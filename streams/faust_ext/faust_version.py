"""The faust-streaming release the worker's Faust repairs are written against, checked on import.

statusflow corrects faust-streaming in five places (docs/architecture.md, "The Faust repairs"),
each through Faust's internals rather than its API: the consumer's `_new_offset`, `_acked`,
`_gap`, `_committed_offset` and `_drain_messages` (streams/faust_ext/commits.py), the memory store's
`data` and `_key_partition` and the RocksDB store's `_db_for_partition` and `_key_index`
(streams/faust_ext/table_writes.py, streams/faust_ext/table_store.py), the recovery's `active_offsets` and
`active_remaining` (streams/faust_ext/watchdog.py). Another release may rename or rework any of them
without notice, and a repair that silently stops applying loses records instead of failing.
So the worker refuses to start on any release but this one. Upgrading Faust means reading each
repair against the new release first, then moving `REQUIRED` and the pin in pyproject.toml
together (tests/unit/test_faust_version.py keeps them equal) and refreshing the lock files.

The package streams/faust_ext/ imports this module first, before any of its repairs imports
Faust's internals (and the commit guard, streams/faust_ext/commits.py, imports it before its
own); every Faust app of the worker is built by the package's `install` (streams/topology.py),
so no worker runs without the check.
"""

from __future__ import annotations

from importlib import metadata

DISTRIBUTION = "faust-streaming"
REQUIRED = "0.15.3"


class FaustVersionError(RuntimeError):
    """The installed faust-streaming is not the release the repairs are written against."""


def installed() -> str | None:
    """The installed faust-streaming's version (None: not installed)."""
    try:
        return metadata.version(DISTRIBUTION)
    except metadata.PackageNotFoundError:
        return None


def mismatch(found: str | None) -> str | None:
    """Why the worker must not run with faust-streaming `found` (None: it may)."""
    if found == REQUIRED:
        return None
    have = f"faust-streaming {found} is installed" if found else "faust-streaming is not installed"
    return (
        f"statusflow's worker needs faust-streaming {REQUIRED}, but {have}. Its repairs of Faust "
        f"(docs/architecture.md) use Faust's internals as they are in {REQUIRED} alone. Install the "
        f"locked dependencies (pip install --require-hashes -r requirements.lock) or "
        f"pip install 'faust-streaming=={REQUIRED}'."
    )


def require_pinned() -> None:
    """Raise FaustVersionError unless the installed faust-streaming is `REQUIRED`."""
    reason = mismatch(installed())
    if reason is not None:
        raise FaustVersionError(reason)


try:
    require_pinned()
except FaustVersionError as exc:
    # Exit status 1 with the message on stderr, no traceback: what an operator needs to read.
    raise SystemExit(str(exc)) from None
