"""The one error hierarchy of the project.

Every error we raise derives from :class:`HubError`.  The runtime alone decides on retries:
an error is *transient* (worth retrying: a lost connection, a 503) or *terminal* (bad config,
bad data, a bug); connectors only mark which one it is.
"""
from __future__ import annotations


class HubError(Exception):
    """Root of all errors raised by the hub.  ``str(err)`` is one line a user can act on."""

    transient: bool = False


class ConfigError(HubError):
    """A configuration problem; ``key`` is the dotted key path (``sink.format``)."""

    def __init__(self, message: str, key: str | None = None, line: int | None = None):
        self.key = key
        self.line = line
        self.message = message
        super().__init__(self.format())

    def format(self) -> str:
        where = ""
        if self.key:
            where = self.key
            if self.line:
                where += f" (line {self.line})"
            where += ": "
        return f"{where}{self.message}"


class MissingExtraError(HubError):
    """A connector's optional dependency is not installed."""

    def __init__(self, module: str, extra: str):
        from runtime.extras import install_command  # lazily: this module imports nothing

        self.module = module
        self.extra = extra
        super().__init__(
            f"the Python package {module!r} is missing: install it with  {install_command(extra)}"
        )

    def __reduce__(self) -> tuple[type, tuple[str, str]]:
        # Errors cross process boundaries (executors): rebuild from the arguments, not the text.
        return (MissingExtraError, (self.module, self.extra))


class TransientError(HubError):
    """Worth retrying: the same call may succeed later."""

    transient = True


class TerminalError(HubError):
    """Retrying will not help: stop the pipeline, keep the last checkpoint."""


class BadRecordError(TerminalError):
    """One record can't be read or written; names the record.  May go to the dead-letter
    destination when ``errors.tolerance = "all"``."""


class CheckpointError(HubError):
    """Checkpoint storage is unreadable or unwritable."""


class CheckpointUnreachableError(CheckpointError, TransientError):
    """Checkpoint storage can't be reached right now (a lost connection, an HDFS DataNode
    down): worth retrying, unlike a checkpoint that is missing or damaged."""
