"""Messages between subtasks and the coordinator: plain, serialisable data only.

Everything here except :class:`AsyncDone` may cross a process boundary (a distributed
executor pickles it): no live exceptions (an error is an
:class:`~runtime.executor.failure.ErrorRecord`), no callables, no clients.  :data:`CROSSING`
lists those messages; the executor contract tests pickle each of them.
"""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from typing import Any

from runtime.executor.failure import ErrorRecord


# -- subtask -> coordinator ------------------------------------------------------------------
@dataclass(frozen=True)
class ReaderRegistered:
    subtask: int


@dataclass(frozen=True)
class SplitRequest:
    subtask: int


@dataclass(frozen=True)
class ReaderEvent:
    subtask: int
    event: dict[str, Any]


@dataclass(frozen=True)
class SourceAck:
    """A reader snapshotted its splits and put barrier ``checkpoint_id`` downstream."""

    subtask: int
    checkpoint_id: int
    splits: list[dict[str, Any]]


@dataclass(frozen=True)
class SinkAck:
    """A writer prepared everything before barrier ``checkpoint_id``."""

    subtask: int
    checkpoint_id: int
    committables: list[dict[str, Any]]
    state: dict[str, Any] | None
    watermark_ms: int | None
    #: all inputs idle: the watermark must not hold the pipeline's back
    idle: bool = False


@dataclass(frozen=True)
class SourceFinished:
    subtask: int


@dataclass(frozen=True)
class TaskFailed:
    """A subtask failed.  ``error`` may be given as the exception itself: it is kept as its
    :class:`ErrorRecord` (located at ``task``), never as the live exception."""

    #: the subtask and its operator: ``sink-1 (sinks.jdbc writer)``
    task: str
    error: ErrorRecord

    def __post_init__(self) -> None:
        if isinstance(self.error, BaseException):
            object.__setattr__(self, "error", ErrorRecord.of(self.error, self.task))


def dropped_after_cancel(log: logging.Logger, task: str, error: BaseException | ErrorRecord
                         ) -> None:
    """One line for an error a subtask met after the job was cancelled (a closed channel or
    connection is the usual consequence of the cancel): not the job's error, but not dropped
    without a word.  The traceback under ``HUB_DEBUG=1``."""
    debug = os.environ.get("HUB_DEBUG") == "1"
    if isinstance(error, ErrorRecord):
        log.info("%s: %s: %s after the job was cancelled (ignored: the job already failed)%s",
                 task, error.type.rpartition(".")[2], error.message,
                 "\n" + error.traceback if debug else "")
        return
    log.info("%s: %s: %s after the job was cancelled (ignored: the job already failed)",
             task, type(error).__name__, error, exc_info=debug)


@dataclass(frozen=True)
class SavepointRequest:
    """From the outside (``hub savepoint``): take savepoint ``name``; optionally stop after.
    The answer goes to whoever asked through ``request_id``: the executor keeps the reply
    (a callable) on the side that asked, only the id travels."""

    name: str
    stop: bool = False
    request_id: str = ""


@dataclass(frozen=True)
class AsyncDone:
    """An enumerator's :meth:`~runtime.source.EnumeratorContext.call_async` returned: run
    ``handler(result, error)`` in the control thread.  Never leaves the coordinator's
    process (it holds a callable), unlike every other message here."""

    handler: Any
    result: Any
    error: BaseException | None


# -- coordinator -> source subtask -----------------------------------------------------------
@dataclass(frozen=True)
class AddSplits:
    splits: list[dict[str, Any]]


@dataclass(frozen=True)
class NoMoreSplits:
    pass


@dataclass(frozen=True)
class SourceEvent:
    """From the enumerator to one reader (``SourceReader.handle_source_event``)."""

    event: dict[str, Any]


@dataclass(frozen=True)
class TriggerCheckpoint:
    checkpoint_id: int
    savepoint: str | None = None
    final: bool = False


@dataclass(frozen=True)
class CheckpointComplete:
    """To a reader or the enumerator: the checkpoint is stored.  To a sink subtask: the
    committer is done with it (``SinkWriter.notify_checkpoint_complete``)."""

    checkpoint_id: int


@dataclass(frozen=True)
class CheckpointStored:
    """To a sink subtask: the checkpoint is stored, its commit begins
    (``SinkWriter.notify_checkpoint_stored``)."""

    checkpoint_id: int


@dataclass(frozen=True)
class Cancel:
    reason: str = field(default="cancelled")


#: The messages that cross between subtasks and the coordinator (a distributed executor
#: serialises them): plain data only.
CROSSING: tuple[type, ...] = (
    ReaderRegistered, SplitRequest, ReaderEvent, SourceAck, SinkAck, SourceFinished, TaskFailed,
    SavepointRequest, AddSplits, NoMoreSplits, SourceEvent, TriggerCheckpoint,
    CheckpointComplete, CheckpointStored, Cancel)
