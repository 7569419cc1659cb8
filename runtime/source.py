"""The split-based source interface (the FLIP-27 shape).

A :class:`Source` is only a factory: one :class:`SplitEnumerator` (runs in the coordinator,
discovers splits and hands them out) and one :class:`SourceReader` per subtask (reads the splits
it was given).  A :class:`Split` is an id plus its progress; a reader's checkpoint state is the
list of its splits with their current progress, and a restored reader gets exactly those splits
back through :meth:`SourceReader.add_splits`.  All state derives from restored splits, nothing
from constructors.

Everything exchanged with the coordinator (splits, enumerator state, events) is plain,
JSON-serialisable data, so that a distributed executor can move it between processes.

A failed reader's splits are not handed back to the enumerator one by one (there is no
``add_splits_back``): the failure of any subtask fails the whole attempt, and the restart
strategy restores every reader and the enumerator from the latest completed checkpoint.  Splits
a reader had then are in its restored state; splits assigned after it are in the enumerator's
(it is snapshotted before the trigger goes out), so each split is in exactly one of them.
"""
from __future__ import annotations

import dataclasses
import enum
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any, ClassVar, TypeVar

from runtime.batch import ChangeBatch
from runtime.deadletter import DeadLetterQueue
from runtime.schema import SchemaChange

T = TypeVar("T")


@dataclasses.dataclass
class Split:
    """A unit of work with an id and its progress.

    Subclasses are dataclasses whose fields are JSON-compatible (str, int, float, bool, None,
    lists and dicts of those).  A split object is owned by one reader at a time; the reader
    updates its progress fields in place as it reads.
    """

    split_id: str

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Split:
        return cls(**d)


class InputStatus(enum.Enum):
    MORE_AVAILABLE = "more"        # call poll_next again right away
    NOTHING_AVAILABLE = "nothing"  # call wait_available before polling again
    END_OF_INPUT = "end"           # all splits done and no more will come


class ReaderOutput(ABC):
    """Where a reader puts what it read.  Given to :meth:`SourceReader.poll_next`."""

    @abstractmethod
    def collect(self, batch: ChangeBatch, split_id: str) -> None:
        """Emit a batch read from split ``split_id``.  Its event times drive that split's
        watermark.  May block (backpressure)."""

    @abstractmethod
    def collect_schema_change(self, change: SchemaChange, split_id: str) -> None:
        """Emit a schema change, in order with the data of its table."""

    @abstractmethod
    def split_finished(self, split_id: str) -> None:
        """The split is done: its watermark no longer holds the reader's watermark back."""


class ReaderContext(ABC):
    """Runtime services for a reader."""

    subtask: int
    parallelism: int
    #: Where bad records go (or raise, when the pipeline does not tolerate them).
    dead_letter: DeadLetterQueue

    @abstractmethod
    def send_split_request(self) -> None:
        """Ask the enumerator for a split (answered later through ``add_splits`` or
        ``notify_no_more_splits``)."""

    @abstractmethod
    def send_event_to_enumerator(self, event: dict[str, Any]) -> None:
        """Deliver a plain-data event to :meth:`SplitEnumerator.handle_reader_event`."""

    def set_gauge(self, name: str, value: float, agg: str = "sum") -> None:
        """Report a metric of this reader for the progress display and the service (e.g.
        ``binlog_lag_s``, ``snapshot_chunks_done``).  Values of all subtasks are combined by
        ``agg``: ``sum``, ``max`` or ``min``.  Cheap: call it per batch, not per event."""


class EnumeratorContext(ABC):
    """Runtime services for the enumerator.  Calls are made from the coordinator thread."""

    parallelism: int

    @abstractmethod
    def assign_splits(self, assignment: dict[int, list[Split]]) -> None:
        """Hand splits to readers (subtask index -> splits)."""

    @abstractmethod
    def signal_no_more_splits(self, subtask: int) -> None:
        """Tell a reader of a bounded source that it will get no further split."""

    @abstractmethod
    def registered_readers(self) -> list[int]:
        """Subtasks whose reader is running."""

    def set_gauge(self, name: str, value: float, agg: str = "sum") -> None:
        """Report a metric of the enumerator (e.g. ``snapshot_chunks_total``); as
        :meth:`ReaderContext.set_gauge`."""

    def send_event_to_reader(self, subtask: int, event: dict[str, Any]) -> None:
        """Deliver a plain-data event to :meth:`SourceReader.handle_source_event` of a reader,
        in order with the splits assigned to it.  Like an assignment, an event sent after
        :meth:`SplitEnumerator.snapshot_state` reaches the reader after that checkpoint's
        trigger."""
        raise NotImplementedError(f"{type(self).__name__} can't send events to readers")

    @abstractmethod
    def schedule(self, fn: Callable[[], None], interval_s: float) -> None:
        """Call ``fn`` every ``interval_s`` seconds in the coordinator thread (for periodic
        discovery of new files, partitions or tables).  ``fn`` must not block: put its I/O
        into :meth:`call_async`."""

    def call_async(self, fn: Callable[[], T], handler: Callable[[T | None, BaseException | None],
                                                                None]) -> None:
        """Run ``fn`` (blocking I/O: chunk boundaries, Kafka metadata, a file listing) off
        the coordinator thread and, once it returns, call ``handler(result, None)`` in the
        coordinator thread, or ``handler(None, error)`` when it raised (the handler decides:
        re-raise to fail the job, or log and try later).  Flink's ``callAsync``: checkpoints,
        acks and split requests are served while ``fn`` runs, so enumerator state must not
        assume the result came before the next call of any other method.  Calls run one at a
        time, in the order made.  Default: runs ``fn`` right here (for executors without a
        thread to spare and for tests)."""
        try:
            result = fn()
        except Exception as exc:  # noqa: BLE001 - handed to the handler, as the async path does
            handler(None, exc)
            return
        handler(result, None)


class SplitEnumerator(ABC):
    """Discovers splits and hands them out.  Runs in the coordinator thread; its methods must
    not block for long.  Its state must stay small (O(tables), not O(rows))."""

    def start(self) -> None:
        """Called once before any other method."""

    @abstractmethod
    def handle_split_request(self, subtask: int) -> None:
        """A reader asks for work: assign a split, or signal no more splits when bounded."""

    def add_reader(self, subtask: int) -> None:
        """A reader was registered."""

    def handle_reader_event(self, subtask: int, event: dict[str, Any]) -> None:
        """A plain-data event sent by a reader."""

    @abstractmethod
    def snapshot_state(self, checkpoint_id: int) -> dict[str, Any]:
        """State to restore from (JSON-compatible).  Splits already assigned are not part of
        it: they are in the readers' state."""

    def notify_checkpoint_complete(self, checkpoint_id: int) -> None:
        """The checkpoint is durable."""

    def close(self) -> None:
        """Release resources.  Called once, also after failures."""


class SourceReader(ABC):
    """Reads the splits assigned to one subtask.  Runs in that subtask's thread.

    Blocking I/O belongs in a fetch loop of the reader's own (a thread it starts), not in
    :meth:`poll_next`, unless the work is CPU-bound and bounded per call (datagen, files).
    """

    def start(self) -> None:
        """Called once before polling.  Typically asks for the first split."""

    @abstractmethod
    def poll_next(self, output: ReaderOutput) -> InputStatus:
        """Emit what is available into ``output`` (one batch or a few: keep each call short,
        checkpoint barriers wait for it to return) and say whether more is available."""

    def wait_available(self, timeout_s: float) -> None:
        """Block until data may be available or ``timeout_s`` passed.  Called after
        ``NOTHING_AVAILABLE``."""
        time.sleep(min(timeout_s, 0.01))

    @abstractmethod
    def add_splits(self, splits: list[Split]) -> None:
        """New splits (fresh or restored with progress) to read."""

    def notify_no_more_splits(self) -> None:
        """The enumerator will assign nothing more (bounded sources)."""

    def handle_source_event(self, event: dict[str, Any]) -> None:
        """An event sent by the enumerator (:meth:`EnumeratorContext.send_event_to_reader`).
        Called between two ``poll_next`` calls; must not block for long."""

    @abstractmethod
    def snapshot_state(self, checkpoint_id: int) -> list[Split]:
        """The splits this reader owns, with progress up to the last event emitted.  Called
        between two ``poll_next`` calls, before the barrier goes downstream."""

    def notify_checkpoint_complete(self, checkpoint_id: int) -> None:
        """The checkpoint is durable (e.g. commit offsets to a Kafka group for monitoring)."""

    def close(self) -> None:
        """Release resources.  Called once, also after failures."""


class Source(ABC):
    """Factory for the enumerator and the readers of one source.  Created from the typed
    config of the connector; must not connect anywhere in its constructor."""

    #: The class of this source's splits (for deserialising checkpoint state).
    split_type: ClassVar[type[Split]] = Split

    @property
    def bounded(self) -> bool:
        """True when the source ends on its own."""
        return False

    def check(self) -> None:
        """Fail fast, before the pipeline starts (and before each restart), when the source
        can't work (its server does not answer, a listed topic does not exist).  Raise a
        one-line :class:`~runtime.errors.HubError`: transient ones are retried as
        ``[restart]`` says.  May block (a bounded wait); default: nothing to check."""

    @abstractmethod
    def create_enumerator(self, context: EnumeratorContext,
                          state: dict[str, Any] | None) -> SplitEnumerator:
        """A new enumerator, from checkpoint ``state`` when restoring (else None)."""

    @abstractmethod
    def create_reader(self, context: ReaderContext) -> SourceReader:
        """A reader for subtask ``context.subtask``."""
