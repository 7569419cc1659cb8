"""Messages between subtasks and the coordinator: plain, serialisable data only."""
from __future__ import annotations

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
    task: str
    error: BaseException


@dataclass(frozen=True)
class SavepointRequest:
    """From the outside (``hub savepoint``): take savepoint ``name``; optionally stop after."""

    name: str
    stop: bool = False
    reply: Any = None  # callable(path_or_error: str, ok: bool) run when done


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
