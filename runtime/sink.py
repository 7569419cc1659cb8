"""The two-phase-commit sink interface.

A :class:`Sink` creates one :class:`SinkWriter` per subtask and one :class:`Committer`.
Writers write batches; at a checkpoint barrier each writer's :meth:`SinkWriter.prepare_commit`
flushes and returns *committables*: plain data naming what was prepared (pending files, a
prepared transaction id, a write-ahead-log segment).  The coordinator stores them in the
checkpoint and, only once the checkpoint is durable, hands them to :meth:`Committer.commit`.
Commit must be idempotent: it is replayed after a crash.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any

from runtime.batch import ChangeBatch
from runtime.deadletter import DeadLetterQueue
from runtime.schema import SchemaChange

#: A committable is a JSON-compatible dict; its meaning is private to the sink.
Committable = dict[str, Any]


@dataclass(frozen=True)
class WriterContext:
    """Runtime facts a writer needs.  ``attempt`` is unique per run of the pipeline (names of
    files or transactions built from it never collide with an earlier run's)."""

    pipeline: str
    subtask: int
    parallelism: int
    attempt: str
    state_dir: str
    #: Where bad records go (or raise, when the pipeline does not tolerate them).
    dead_letter: DeadLetterQueue = field(default_factory=DeadLetterQueue)
    #: ``checkpoint.timeout``: a checkpoint not complete by then is aborted, so a writer
    #: waiting for the commit of what it prepared knows it need not wait longer.
    checkpoint_timeout_s: float = 600.0


@dataclass(frozen=True)
class CommitContext:
    """Facts about the checkpoint being committed.  ``watermark_ms`` is the minimum over all
    writers at the barrier (event time before which all data of the checkpoint is complete).
    ``state_dir`` is the writers' ``WriterContext.state_dir`` (what they kept there, e.g.
    write-ahead-log segments of checkpoints that never completed, the committer can find and
    discard at :meth:`Committer.recover`); empty when unknown.  ``job_id`` names the
    pipeline's checkpoint lineage: new at a fresh start, kept by every restore (from a
    checkpoint or a savepoint), so a sink that tags commits with checkpoint ids (Delta
    application transactions, Iceberg snapshot summaries) tags them with the job id too and
    never takes a fresh start's checkpoint 1 for an earlier run's; empty when unknown."""

    pipeline: str
    checkpoint_id: int
    watermark_ms: int | None
    state_dir: str = ""
    job_id: str = ""


class SinkWriter(ABC):
    """Writes the batches of one subtask.  Runs in that subtask's thread; may block."""

    @abstractmethod
    def write(self, batch: ChangeBatch) -> None:
        """Buffer or write ``batch``.  Nothing written may become visible before commit."""

    def write_schema_change(self, change: SchemaChange) -> None:
        """A schema change, in order with the data of its table.  Default: ignore."""

    def on_watermark(self, watermark_ms: int) -> None:
        """Event time advanced on every input of this writer."""

    @abstractmethod
    def prepare_commit(self, checkpoint_id: int) -> list[Committable]:
        """Flush everything written since the last call and return what must be committed
        when checkpoint ``checkpoint_id`` is durable.  Called at the barrier."""

    def snapshot_state(self, checkpoint_id: int) -> dict[str, Any] | None:
        """Writer state beyond committables (JSON-compatible), given back on restore."""
        return None

    def close(self) -> None:
        """Release resources; discard what was not prepared.  Called once, also after
        failures."""


class Committer(ABC):
    """Makes prepared data visible.  Runs in the coordinator, after the checkpoint that holds
    the committables is durable."""

    @abstractmethod
    def commit(self, committables: list[Committable], context: CommitContext) -> list[Committable]:
        """Commit all of ``committables``.  Idempotent: a committable already committed is a
        no-op.  Returns the committables that can't be committed *yet* (they are kept in the
        next checkpoint and offered again), e.g. a partition whose end the watermark has not
        passed.  Raise :class:`~runtime.errors.TransientError` to have the call retried."""

    def recover(self, committables: list[Committable], context: CommitContext) -> list[Committable]:
        """Called once before writers start, with the committables of the restored checkpoint
        (empty on a fresh start).  Commit them (idempotently) and roll back or discard whatever
        this pipeline prepared that is not among them.  Returns as :meth:`commit` does."""
        return self.commit(committables, context) if committables else []

    def abort(self, committables: list[Committable], context: CommitContext) -> None:
        """Roll back ``committables`` of checkpoint ``context.checkpoint_id``, which will never
        complete (it could not be stored, it timed out, or the job stops before it is
        durable), so that nothing it prepared holds locks or space until the next start.  Best
        effort and idempotent: what is not rolled back here, :meth:`recover` rolls back at the
        next start.  Default: nothing to release."""

    def gauges(self) -> dict[str, float]:
        """Metrics of the committer for the progress display and the service (e.g. writes
        the store refused), read after each checkpoint's commit; summed with nothing else.
        Cheap: no I/O.  Default: none."""
        return {}

    def close(self) -> None:
        """Release resources."""


class Sink(ABC):
    """Factory for writers and the committer of one sink.  Created from the typed config of
    the connector; must not connect anywhere in its constructor."""

    def check(self) -> None:
        """Fail fast, before the pipeline starts, when the sink can't work (an unwritable
        path, a missing server setting).  Raise a one-line :class:`~runtime.errors.HubError`."""

    @classmethod
    def check_checkpointing(cls, config: Any, interval_s: float, timeout_s: float) -> None:
        """Fail fast when the sink's options (``config``, its validated config model) don't
        fit the pipeline's checkpointing: ``interval_s`` between checkpoints, each allowed
        ``timeout_s`` to complete.  Called when the pipeline file is validated (``hub
        validate`` and ``hub run``), before any sink is built; must not connect anywhere.
        Raise a one-line :class:`~runtime.errors.ConfigError` whose key is relative to the
        sink's table (e.g. ``transaction-timeout``).  Default: nothing to check."""

    @abstractmethod
    def create_writer(self, context: WriterContext, state: dict[str, Any] | None) -> SinkWriter:
        """A writer for subtask ``context.subtask``; ``state`` is what that subtask's writer
        returned from ``snapshot_state`` at the restored checkpoint."""

    @abstractmethod
    def create_committer(self) -> Committer:
        """The committer (one per pipeline)."""

    def read_hint(self, tables: list[str]) -> str | None:
        """One line of Python that reads what the sink wrote for ``tables`` (table ids, those
        the run wrote), printed at the end of ``hub run`` as a command (``python -c``); no
        I/O.  Default: none."""
        return None

    def existing_output(self, pipeline: str) -> list[str]:
        """What an earlier run of ``pipeline`` committed into this sink, one short line per
        place (a table, a folder), for a start without a checkpoint to restore: the runner
        asks before such a start, since starting over would write a second copy of a
        changelog (or a second snapshot over a table's state).  May connect; called only at
        a fresh start.  Default: nothing to tell (sinks whose writes are idempotent upserts)."""
        return []
