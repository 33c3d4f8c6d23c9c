"""The root of every statusflow error.

    StatusflowError
    ├── SchemaError (schemas.codec)          not retriable: the bytes are not what the contract says
    ├── ConfigurationError (schemas.errors)  not retriable: fix the settings and restart
    ├── UnparseableWebhook (streams.adapters.base)   not retriable: dead-letter with the reason
    ├── PublishError (receiver.publisher)    retriable: the broker did not acknowledge in time
    ├── SpoolError (receiver.spool)          retriable: SpoolFull, SpoolUnavailable → 503 + Retry-After
    ├── Rejected (receiver.errors)           an HTTP refusal with its status (4xx, 503)
    └── MissingExtra (schemas.errors)        not retriable: install the extra it names (also an ImportError)

`retriable` decides between retrying and dead-lettering or failing fast.
"""

from __future__ import annotations


class StatusflowError(Exception):
    """Base class of every error raised by statusflow code."""

    retriable: bool = False


class ConfigurationError(StatusflowError):
    """The settings or the channel configuration cannot be used."""


class MissingExtra(StatusflowError, ImportError):
    """A part of statusflow whose packages are an optional extra was used without them.

    Raised where the module is imported (`raise MissingExtra(...) from exc` in the importer's
    `except ModuleNotFoundError`), so the message says what to install instead of a bare
    "No module named ...".
    """

    def __init__(self, package: str, extra: str, purpose: str) -> None:
        super().__init__(
            f"{purpose} needs {package}, from statusflow's `{extra}` extra: pip install 'statusflow[{extra}]'"
        )
        self.package = package
        self.extra = extra
