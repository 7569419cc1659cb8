"""The two-phase-commit sink interface.

A :class:`Sink` creates one :class:`SinkWriter` per subtask and one :class:`Committer`.
Writers write batches; at a checkpoint barrier each writer's :meth:`SinkWriter.prepare_commit`
flushes and returns *committables*: plain data naming what was prepared (pending files, a
prepared transaction id, a write-ahead-log segment).  The coordinator stores them in the
checkpoint and, only once the checkpoint is durable, hands them to :meth:`Committer.commit`.
Commit must be idempotent: it is replayed after a crash.

Commits run in the committer task (:mod:`runtime.checkpoint.committer_task`), one checkpoint
at a time in checkpoint order, off the coordinator's thread.  A committer reports what became
of each committable (:class:`CommitOutcome`: done, already committed, retry later, failed), so
that a failure on one retries only that one; committers that commit a checkpoint as a whole
implement :meth:`Committer.commit` only.  Each writer hears when a checkpoint is stored
(:meth:`SinkWriter.notify_checkpoint_stored`) and when its commit is done
(:meth:`SinkWriter.notify_checkpoint_complete`).

A transaction only its writer's client can finish (a Kafka producer's: librdkafka can't resume
another producer's transaction) is committed by the writer when it hears its checkpoint is
stored; its committer then confirms that commit (and, after a crash, when the writer is gone,
completes it from what the committables hold).  Writers and the committer only ever meet
through these notifications and the committables, so each may run in a process of its own.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Callable, ClassVar

from runtime.batch import ChangeBatch
from runtime.deadletter import DeadLetterQueue
from runtime.errors import HubError, TerminalError
from runtime.schema import SchemaChange

#: A committable is a JSON-compatible dict; its meaning is private to the sink.
Committable = dict[str, Any]


class Notifications:
    """How a writer blocks until the runtime's next notification reaches it.  The sink subtask
    gives each writer one that serves the subtask's control messages; this default, for a
    writer used outside a pipeline (tests, tools), has nothing to deliver."""

    def wait(self, timeout_s: float) -> bool:
        """Block up to ``timeout_s`` until at least one notification was delivered to the
        writer: its :meth:`SinkWriter.notify_checkpoint_stored` or
        :meth:`SinkWriter.notify_checkpoint_complete` ran, in the calling thread
        (the writer's), before this returns.  True when one was delivered.  The default
        returns False at once."""
        return False


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
    #: Given by the sink subtask that runs the writer (never crosses the executor's
    #: interface): where a writer waits for its notifications.
    notifications: Notifications = field(default_factory=Notifications, compare=False,
                                         repr=False)
    #: Given by the sink subtask too: ``record_out(table, ops)`` counts rows the sink's own
    #: writer received (``hub_records_out_total``).  The subtask calls it for each batch it
    #: hands to a writer, unless the writer's ``counts_output`` says the writer calls it
    #: itself (operators chained in front of the sink's writer, whose output differs).
    record_out: Callable[[str, str], None] | None = field(default=None, compare=False,
                                                          repr=False)


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
    never takes a fresh start's checkpoint 1 for an earlier run's; empty when unknown.
    ``dead_letter``: the job's dead-letter queue, for records the store refuses at commit
    (given by the committer task, from the job: a committer needs nothing from its writers,
    which may run in other processes)."""

    pipeline: str
    checkpoint_id: int
    watermark_ms: int | None
    state_dir: str = ""
    job_id: str = ""
    dead_letter: DeadLetterQueue = field(default_factory=DeadLetterQueue, compare=False,
                                         repr=False)


class SinkWriter(ABC):
    """Writes the batches of one subtask.  Runs in that subtask's thread; may block."""

    #: True: the writer counts the rows it passes on through ``WriterContext.record_out``
    #: (the subtask then does not count what it hands to the writer)
    counts_output: ClassVar[bool] = False

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

    def notify_checkpoint_stored(self, checkpoint_id: int) -> None:
        """Checkpoint ``checkpoint_id`` is durable, and with it what this writer prepared for
        it and every earlier one; the committer commits it meanwhile, in another thread or
        process.  A writer whose prepared transaction only it can commit commits it here
        (see the module docstring); a failure raised here fails the job, whose restart
        completes the transaction from the stored committables.  Called in the writer's
        thread like :meth:`notify_checkpoint_complete`; ids only grow, not every id is told.
        Default: nothing."""

    def notify_checkpoint_complete(self, checkpoint_id: int) -> None:
        """The committer is done with checkpoint ``checkpoint_id`` and every earlier one: what
        this writer prepared for them is committed (except what the committer deferred as
        "not yet", e.g. a partition waiting for the watermark, and what a checkpoint that
        timed out prepared and a later one will commit).  Called in the writer's thread,
        between elements or from within ``context.notifications.wait``; ids only grow, and
        not every id is told (a later one stands for the earlier).  A writer whose next
        transaction must wait for the commit of the previous one (its rows are invisible
        until then) waits for this, bounded, instead of asking the store.  Default: nothing."""

    def close(self) -> None:
        """Release resources; discard what was not prepared.  Called once, also after
        failures."""


class Outcome(Enum):
    """What became of one committable (Flink's ``CommitRequest`` signals)."""

    #: committed now
    DONE = "done"
    #: committed before (a replay after a crash): nothing done
    ALREADY_COMMITTED = "already committed"
    #: not committed; with an error (transient): tried again alone, under the runtime's retry
    #: policy, before the checkpoint's commit is done; without one ("not yet", e.g. a
    #: partition whose end the watermark has not passed): kept in the next checkpoint and
    #: offered again with it
    RETRY_LATER = "retry later"
    #: can't be committed (a terminal error): the job fails, the checkpoint keeps it
    FAILED = "failed"


@dataclass(frozen=True)
class CommitOutcome:
    """The outcome of one committable.  ``committable`` is the one to retry or keep (for
    ``RETRY_LATER`` possibly an updated one); ``error`` says why it was not committed."""

    committable: Committable
    outcome: Outcome
    error: HubError | None = None

    @classmethod
    def done(cls, c: Committable) -> CommitOutcome:
        return cls(c, Outcome.DONE)

    @classmethod
    def already_committed(cls, c: Committable) -> CommitOutcome:
        return cls(c, Outcome.ALREADY_COMMITTED)

    @classmethod
    def not_yet(cls, c: Committable) -> CommitOutcome:
        return cls(c, Outcome.RETRY_LATER)

    @classmethod
    def failure(cls, c: Committable, error: HubError) -> CommitOutcome:
        """Retry later when ``error`` is transient, else failed."""
        return cls(c, Outcome.RETRY_LATER if error.transient else Outcome.FAILED, error)


def settle(outcomes: list[CommitOutcome]) -> list[Committable]:
    """The whole-list view of ``outcomes`` (:meth:`Committer.commit` of a committer that
    implements :meth:`Committer.commit_each`): raise the error of a failed committable (else of
    one to retry), return the "not yet" ones."""
    for wanted in (Outcome.FAILED, Outcome.RETRY_LATER):
        for o in outcomes:
            if o.outcome is wanted and (o.error is not None or wanted is Outcome.FAILED):
                raise o.error or TerminalError(f"committing {o.committable} failed")
    return [o.committable for o in outcomes if o.outcome is Outcome.RETRY_LATER]


class Committer(ABC):
    """Makes prepared data visible.  Runs in the committer task (a thread of its own, one
    checkpoint at a time, in checkpoint order), after the checkpoint that holds the
    committables is durable.  Its methods are called from that one thread only (recover before
    it starts, in the thread that starts the job), so a committer needs no locks."""

    #: Stored checkpoints whose commit may be under way at once: with 2 (the default), the
    #: next checkpoint is triggered and completes while the commit of the one before runs.
    #: 1 for a sink whose writers begin their next transaction only once the previous one
    #: committed, and whose transactions of one checkpoint can wait on each other's locks
    #: (JDBC: duplicate-key checks take next-key locks, and a prepared transaction holds them
    #: until its checkpoint completes): with the next barrier right behind the commit, its
    #: writers would prepare short transactions at the same moment and run into each other.
    max_commits_in_flight: ClassVar[int] = 2

    @abstractmethod
    def commit(self, committables: list[Committable], context: CommitContext) -> list[Committable]:
        """Commit all of ``committables``.  Idempotent: a committable already committed is a
        no-op.  Returns the committables that can't be committed *yet* (they are kept in the
        next checkpoint and offered again), e.g. a partition whose end the watermark has not
        passed.  Raise :class:`~runtime.errors.TransientError` to have the call retried."""

    def commit_each(self, committables: list[Committable], context: CommitContext
                    ) -> list[CommitOutcome]:
        """Commit ``committables`` and say what became of each: the committer task retries
        only the ones to retry (with the runtime's retry policy), keeps the "not yet" ones for
        the next checkpoint and fails the job on a failed one.  Idempotent as :meth:`commit`.
        A committer whose committables commit one by one (a prepared transaction per writer)
        overrides this, and has :meth:`commit` return :func:`settle` of it.  Default: the list
        as a whole through :meth:`commit` (all done, or all to retry, or all failed)."""
        try:
            not_yet = self.commit(committables, context)
        except HubError as exc:
            if not committables:  # no committable to carry the error
                raise
            return [CommitOutcome.failure(c, exc) for c in committables]
        later = {id(c) for c in not_yet}
        return ([CommitOutcome.done(c) for c in committables if id(c) not in later]
                + [CommitOutcome.not_yet(c) for c in not_yet])

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

    #: Whether the sink partitions the tables it creates by their
    #: :attr:`~runtime.schema.TableSchema.partition_keys` (a transform's ``partition-keys``);
    #: a sink that does not ignores them (Flink CDC's rule), and the hub says so at start.
    partitions_tables: ClassVar[bool] = False

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
