"""Messages between subtasks and the coordinator: plain, serialisable data only."""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from typing import Any


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
    #: the subtask and its operator: ``sink-1 (sinks.jdbc writer)``
    task: str
    error: BaseException


def dropped_after_cancel(log: logging.Logger, task: str, error: BaseException) -> None:
    """One line for an error a subtask met after the job was cancelled (a closed channel or
    connection is the usual consequence of the cancel): not the job's error, but not dropped
    without a word.  The traceback under ``HUB_DEBUG=1``."""
    log.info("%s: %s: %s after the job was cancelled (ignored: the job already failed)",
             task, type(error).__name__, error, exc_info=os.environ.get("HUB_DEBUG") == "1")


@dataclass(frozen=True)
class SavepointRequest:
    """From the outside (``hub savepoint``): take savepoint ``name``; optionally stop after."""

    name: str
    stop: bool = False
    reply: Any = None  # callable(path_or_error: str, ok: bool) run when done


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
    checkpoint_id: int


@dataclass(frozen=True)
class Cancel:
    reason: str = field(default="cancelled")
