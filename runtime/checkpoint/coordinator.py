"""The checkpoint coordinator: triggers checkpoints, collects acknowledgements, stores
completed checkpoints durably and only then has the sink's committer commit.

It runs in the executor's control thread, which calls it from its control loop; it talks to
subtasks through the ``trigger`` callback and the acks it is given, all plain data.  Commits
run in the committer task (:mod:`runtime.checkpoint.committer_task`): once the executor has
started it (:meth:`CheckpointCoordinator.start_committer`) in a thread of its own, whose
reports the executor hands back (:meth:`CheckpointCoordinator.commit_reported`); until then
inline, in the caller's thread (the recovery commit at start, and tools and tests).

Guarantees:

* At most one checkpoint is in flight, and at most :data:`MAX_COMMITS_IN_FLIGHT` stored
  checkpoints (fewer when the committer says so: ``Committer.max_commits_in_flight``) wait
  for their commit (a commit slower than the interval slows the triggers down instead of
  piling up work).
* A checkpoint is stored (atomically) only once every source and sink subtask acknowledged it;
  the committer sees its committables only after that.  Commits run in checkpoint order.
* A stored checkpoint holds every committable not known committed: its own, those carried, and
  those of earlier checkpoints whose commit is still running, so a restart from it commits
  them all (commit is idempotent).
* Committables never get lost: those of a checkpoint that was aborted (timeout), and those the
  committer returned as "not yet", are carried into the next checkpoint that completes.
* What will never be committed is released at once: when the final checkpoint (which has no
  next one to carry into) times out, and when the job fails, :meth:`Committer.abort` gets the
  committables prepared since the last stored checkpoint (best effort; :meth:`Committer.recover`
  rolls back the rest at the next start).  Committables of a stored checkpoint are never
  aborted: the restart commits them.
* A wedge never goes unnoticed (Flink's ``tolerable-failed-checkpoints``): a checkpoint that
  times out or can't be stored is a failed checkpoint; more than ``tolerable_failures`` of them
  in a row fail the job with :class:`CheckpointsFailed`, a transient error naming the subtasks
  the last one waited for, so that the restart strategy restarts it from the latest checkpoint
  (which releases what the stuck checkpoints prepared and the locks they hold).  A completed
  checkpoint resets the count.
"""
from __future__ import annotations

import logging
import queue
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from runtime.checkpoint.committer_task import (AbortCheckpoint, CheckpointCommitted,
                                               CommitCheckpoint, CommitFailed, CommitterTask)
from runtime.checkpoint.storage import CheckpointStorage
from runtime.deadletter import DeadLetterQueue
from runtime.errors import CheckpointError, HubError, TransientError
from runtime.faults import crash_point
from runtime.metrics import CheckpointInfo, PipelineMetrics
from runtime.sink import Committer
from runtime.watermark import WatermarkValue, merge_min

log = logging.getLogger("hub.checkpoint")

#: Stored checkpoints whose commit has not been reported done, beyond which no checkpoint is
#: triggered on the interval: checkpoint N+1 completes while N commits, no further.
MAX_COMMITS_IN_FLIGHT = 2
#: Failed checkpoints in a row a job survives (``checkpoint.tolerable-failures``).  Flink's
#: default is 0 (the first failed checkpoint fails the job); a storage hiccup or one slow
#: commit should not restart a pipeline, while a sink stuck on a lock is found within a few
#: checkpoint timeouts.
DEFAULT_TOLERABLE_FAILURES = 3


class CheckpointsFailed(TransientError):
    """More than ``checkpoint.tolerable-failures`` checkpoints in a row failed (timed out or
    could not be stored): a wedged subtask or a storage outage.  Transient: a restart from
    the latest checkpoint releases what is stuck."""


@dataclass
class PendingCheckpoint:
    checkpoint_id: int
    started: float
    enumerator_state: dict[str, Any]
    savepoint: str | None = None
    final: bool = False
    source_acks: dict[int, list[dict]] = field(default_factory=dict)
    sink_acks: dict[int, Any] = field(default_factory=dict)
    on_complete: list[Callable[[str], None]] = field(default_factory=list)
    #: called with a one-line reason when the checkpoint will never complete
    on_abort: list[Callable[[str], None]] = field(default_factory=list)
    #: monotonic time by which it must complete; None: ``started`` + the timeout
    deadline: float | None = None

    def committables(self) -> list[dict]:
        return [c for committables, *_ in self.sink_acks.values() for c in committables]


class CheckpointCoordinator:
    def __init__(self, pipeline: str, storage: CheckpointStorage, committer: Committer,
                 num_sources: int, num_sinks: int, interval_s: float, timeout_s: float,
                 metrics: PipelineMetrics, next_id: int = 1,
                 carried: list[dict] | None = None,
                 tolerable_failures: int = DEFAULT_TOLERABLE_FAILURES,
                 operators: tuple[str, str] = ("source", "sink"), job_id: str | None = None,
                 dead_letter: DeadLetterQueue | None = None):
        """``operators``: what the source and sink subtasks run (``sources.kafka reader``,
        ``sinks.jdbc writer``), to name the subtasks a timed-out checkpoint waited for.
        ``job_id``: the restored checkpoint's (see :class:`~runtime.sink.CommitContext`); None
        at a fresh start, which begins a new lineage.  ``dead_letter``: the job's, given to
        the committer with every commit (:attr:`~runtime.sink.CommitContext.dead_letter`)."""
        self.pipeline = pipeline
        self.job_id = job_id or uuid.uuid4().hex
        self.storage = storage
        self.committer = committer
        self.num_sources, self.num_sinks = num_sources, num_sinks
        self.interval_s = interval_s
        self.timeout_s = timeout_s
        self.metrics = metrics
        self.next_id = next_id
        self.pending: PendingCheckpoint | None = None
        self.carried: list[dict] = list(carried or [])
        #: checkpoint id -> committables prepared for it that are in no stored checkpoint yet
        #: (a timed-out checkpoint's, late acks): carried, and aborted if the job ends first
        self.unstored: dict[int, list[dict]] = {}
        self.last_trigger = time.monotonic()
        self.last_completed: int | None = None
        self.tolerable_failures = tolerable_failures
        #: checkpoints failed (timed out, not stored) since the last completed one
        self.failed_in_row = 0
        self.operators = operators
        self.commits = CommitterTask(committer, pipeline, storage.state_dir, self.job_id,
                                     dead_letter=dead_letter)
        #: checkpoint id -> what its commit request holds, until the commit is reported done
        #: (stored again with every checkpoint meanwhile), in checkpoint order
        self.committing: dict[int, list[dict]] = {}
        self.last_committed: int | None = None
        #: the reports of commits, as :meth:`commit_reported` got them (inline: at once)

    # -- triggering ---------------------------------------------------------------------------
    def due(self) -> bool:
        limit = min(MAX_COMMITS_IN_FLIGHT, self.committer.max_commits_in_flight)
        return (self.pending is None and len(self.committing) < limit
                and time.monotonic() - self.last_trigger >= self.interval_s)

    def trigger(self, enumerator_state: dict[str, Any], savepoint: str | None = None,
                final: bool = False, deadline: float | None = None) -> PendingCheckpoint:
        """Start checkpoint ``next_id``; the caller sends the trigger to every source.  It
        times out at ``deadline`` (monotonic) when given, else ``timeout_s`` from now."""
        if self.pending is not None:
            raise HubError("a checkpoint is already in progress")
        self.pending = PendingCheckpoint(self.next_id, time.monotonic(), enumerator_state,
                                         savepoint, final, deadline=deadline)
        self.next_id += 1
        self.last_trigger = time.monotonic()
        return self.pending

    def check_timeout(self) -> bool:
        """Abort the pending checkpoint when it ran out of time.  A regular checkpoint's
        prepared committables are carried into the next one.  The final checkpoint has no next
        one: its committables are aborted (:meth:`abort`) and True tells the caller to stop."""
        p = self.pending
        if p is None:
            return False
        deadline = p.started + self.timeout_s if p.deadline is None else p.deadline
        if time.monotonic() < deadline:
            return False
        reason = (f"checkpoint {p.checkpoint_id} timed out after {deadline - p.started:.3g}s "
                  f"waiting for {self.missing(p)}")
        if p.final:
            self.abort(reason)
            return True
        for committables, *_ in p.sink_acks.values():
            self.carried.extend(committables)
            self.unstored.setdefault(p.checkpoint_id, []).extend(committables)
        self.pending = None
        _notify(p.on_abort, reason)
        self._failed(p, reason, "it is aborted; its prepared data will be committed with the "
                                "next one")
        return False

    def missing(self, p: PendingCheckpoint) -> str:
        """The subtasks that have not acknowledged ``p``: ``sink subtask 1 (sinks.jdbc writer)
        and source subtasks 0, 1 (sources.kafka reader)``.  Sinks first: a source that has not
        acknowledged is often only held back by a blocked sink (backpressure)."""
        parts = []
        for kind, operator, count, acked in (("sink", self.operators[1], self.num_sinks,
                                              p.sink_acks),
                                             ("source", self.operators[0], self.num_sources,
                                              p.source_acks)):
            ids = [str(i) for i in range(count) if i not in acked]
            if ids:
                parts.append(f"{kind} subtask{'s' if len(ids) > 1 else ''} {', '.join(ids)} "
                             f"({operator})")
        return " and ".join(parts) or "the coordinator"

    def _failed(self, p: PendingCheckpoint, reason: str, what_now: str) -> None:
        """Count a failed checkpoint; beyond ``tolerable_failures`` in a row release what the
        failed checkpoints prepared and raise :class:`CheckpointsFailed`.  A savepoint (asked
        for by hand, answered with the reason) is not counted, as in Flink."""
        if p.savepoint:
            log.warning("%s; %s (a savepoint: not counted as a failed checkpoint)", reason,
                        what_now)
            return
        self.failed_in_row += 1
        self.metrics.checkpoint_failed()
        n, allowed = self.failed_in_row, self.tolerable_failures
        if n > allowed:
            line = (f"{n} checkpoints in a row failed (checkpoint.tolerable-failures = "
                    f"{allowed}); last: {reason}" if n > 1 else
                    f"checkpoint failed (checkpoint.tolerable-failures = 0): {reason}")
            self.abort(line)
            raise CheckpointsFailed(line)
        log.warning("%s; %s (%d of %d failed checkpoints in a row tolerated: "
                    "checkpoint.tolerable-failures)", reason, what_now, n, allowed)

    def prepared_unstored(self, checkpoint_id: int, committables: list[dict]) -> None:
        """Committables a writer prepared for ``checkpoint_id`` that reached no checkpoint
        (an ack that came in while the job ended): released by the next :meth:`abort`."""
        if committables:
            self.unstored.setdefault(checkpoint_id, []).extend(committables)

    def abort(self, reason: str) -> None:
        """The job ends before the pending checkpoint (if any) is durable: release what it and
        earlier timed-out checkpoints prepared (:meth:`Committer.abort`, best effort: a failure
        is logged, :meth:`Committer.recover` rolls back at the next start; in the committer
        task, after the commits queued before) and tell whoever waits for the pending
        checkpoint (``on_abort``) why."""
        p, self.pending = self.pending, None
        if p is not None:
            if p.sink_acks:
                self.unstored.setdefault(p.checkpoint_id, []).extend(p.committables())
            _notify(p.on_abort, reason)
        unstored, self.unstored = self.unstored, {}
        aborted = {id(c) for committables in unstored.values() for c in committables}
        self.carried = [c for c in self.carried if id(c) not in aborted]
        for checkpoint_id, committables in sorted(unstored.items()):
            if committables:  # in the committer task, after the commits before it
                self._submit(AbortCheckpoint(checkpoint_id, committables, reason))

    # -- acknowledgements ---------------------------------------------------------------------
    def ack_source(self, subtask: int, checkpoint_id: int, splits: list[dict]) -> bool:
        p = self.pending
        if p is None or p.checkpoint_id != checkpoint_id:
            return False  # a late ack of an aborted checkpoint: the splits are stale
        p.source_acks[subtask] = splits
        return self._maybe_complete()

    def ack_sink(self, subtask: int, checkpoint_id: int, committables: list[dict],
                 state: dict | None, watermark_ms: WatermarkValue) -> bool:
        p = self.pending
        if p is None or p.checkpoint_id != checkpoint_id:
            # late ack of an aborted checkpoint: what it prepared must still be committed
            self.carried.extend(committables)
            self.unstored.setdefault(checkpoint_id, []).extend(committables)
            return False
        p.sink_acks[subtask] = (committables, state, watermark_ms)
        return self._maybe_complete()

    def _maybe_complete(self) -> bool:
        p = self.pending
        assert p is not None
        if len(p.source_acks) < self.num_sources or len(p.sink_acks) < self.num_sinks:
            return False
        self.pending = None
        return self._complete(p)

    def _complete(self, p: PendingCheckpoint) -> bool:
        """Store ``p`` and have it committed; False when it could not be stored (a failed
        checkpoint).  Whoever waits for ``p`` (``on_complete``) is told once it is stored."""
        committables = list(self.carried)
        writers = []
        for i in range(self.num_sinks):
            c, state, _ = p.sink_acks[i]
            committables.extend(c)
            writers.append(state)
        merged = merge_min([p.sink_acks[i][2] for i in range(self.num_sinks)])
        watermark = merged if isinstance(merged, int) else None
        data = {
            "version": 1, "pipeline": self.pipeline, "job_id": self.job_id,
            "checkpoint_id": p.checkpoint_id,
            "timestamp_ms": int(time.time() * 1000), "savepoint": p.savepoint, "final": p.final,
            "source": {"enumerator": p.enumerator_state,
                       "readers": [p.source_acks[i] for i in range(self.num_sources)]},
            # with what earlier checkpoints' commits still running hold: the restart commits it
            "sink": {"committables": [c for held in self.committing.values() for c in held]
                                     + committables, "writers": writers},
            "watermark_ms": watermark,
        }
        try:
            path = self.storage.store(p.checkpoint_id, data)
            if p.savepoint:
                path = self.storage.store(p.checkpoint_id, data, savepoint=p.savepoint)
        except OSError as exc:
            error = CheckpointError(f"checkpoint {p.checkpoint_id}: can't store it in "
                                    f"{self.storage.root}: {exc}")
            error.__cause__ = exc
            self._store_failed(p, error)
            return False
        self.carried = []
        self.unstored = {}
        self.failed_in_row = 0
        self.last_completed = p.checkpoint_id
        duration = time.monotonic() - p.started
        self.metrics.last_checkpoint = CheckpointInfo(p.checkpoint_id, time.time(), duration,
                                                      p.savepoint)
        self.metrics.checkpoints_completed += 1
        self.metrics.watermark_ms = watermark
        log.debug("checkpoint %d stored in %.3fs", p.checkpoint_id, duration)
        crash_point("checkpoint-stored", p.checkpoint_id, carries=bool(committables))
        for cb in p.on_complete:
            cb(path)
        # Durable now: make the prepared data visible (in checkpoint order).
        self.committing[p.checkpoint_id] = committables
        self._submit(CommitCheckpoint(p.checkpoint_id, committables, watermark))
        return True

    def _store_failed(self, p: PendingCheckpoint, error: CheckpointError) -> None:
        """A failed checkpoint: what ``p`` prepared is carried into the next one, as for a
        timeout.  If the job ends first it is released, unless the failed store left it durable
        after all (a failure after the rename) or that can't be told: then the restart commits
        it, and an abort would lose it.  The final checkpoint has no next one: its failure
        ends the job (:class:`CheckpointError`)."""
        committables = p.committables()
        self.carried.extend(committables)
        try:
            durable = p.checkpoint_id in self.storage.completed_ids()
        except Exception as exc:  # noqa: BLE001 - storage unreachable: can't tell, keep it
            log.warning("checkpoint %d: can't tell whether it was stored (%s); what it prepared "
                        "is not released if the job ends", p.checkpoint_id, exc)
            durable = True
        if durable:
            log.warning("checkpoint %d may be stored despite the error; a restart commits it",
                        p.checkpoint_id)
        elif committables:
            self.unstored.setdefault(p.checkpoint_id, []).extend(committables)
        _notify(p.on_abort, str(error))
        if p.final:  # no next one: the sources ended at its barrier
            self.abort(str(error))
            raise error
        self._failed(p, str(error), "its prepared data will be committed with the next one")

    # -- commits --------------------------------------------------------------------------------
    def start_committer(self, reports: queue.Queue) -> None:
        """Commit in the committer task's own thread from now on; its reports go to
        ``reports``, to be handed to :meth:`commit_reported` in the control thread."""
        self.commits.start(reports)

    def stop_committer(self, failed: bool, wait_s: float) -> bool:
        """End the committer task once it served what is queued (after a failure, commits not
        started are left to the restart; aborts run).  False when it is left behind busy."""
        return self.commits.stop(discard_commits=failed, wait_s=wait_s)

    def _submit(self, request: CommitCheckpoint | AbortCheckpoint) -> None:
        if self.commits.running:
            self.commits.submit(request)
            return
        report = self.commits.process(request)
        if report is not None:
            self.commit_reported(report)

    def commit_reported(self, report: CheckpointCommitted | CommitFailed) -> int:
        """A report of the committer task: the checkpoint whose commit is done (what it left
        "not yet" is carried into the next checkpoint).  A failed commit raises its error: the
        job ends, and the restart commits from the stored checkpoint."""
        if isinstance(report, CommitFailed):
            raise report.exception()
        cid = report.checkpoint_id
        self.committing.pop(cid, None)
        self.carried.extend(report.not_yet)
        self.last_committed = cid
        for name, value in report.gauges.items():  # e.g. writes the store refused
            self.metrics.set_gauge("committer", name, value)
        log.debug("checkpoint %d committed: %s", cid, report.outcomes)
        return cid

    def commit(self, committables: list[dict], checkpoint_id: int, watermark: int | None,
               recover: bool = False) -> list[dict]:
        """Commit now, in the calling thread (the committer task must not be running), with
        retries on transient errors; returns the "not yet" committables.  ``recover``: the
        restored checkpoint's, before writers start (:meth:`Committer.recover`)."""
        assert not self.commits.running, "commits run in the committer task"
        report = self.commits.process(CommitCheckpoint(checkpoint_id, committables, watermark,
                                                       recover))
        if isinstance(report, CommitFailed):
            raise report.exception()
        assert report is not None
        return report.not_yet


def _notify(callbacks: list[Callable[[str], None]], reason: str) -> None:
    for cb in callbacks:
        try:
            cb(reason)
        except Exception as exc:  # noqa: BLE001 - a waiter that can't be told must not stop us
            log.warning("could not report %r: %s: %s", reason, type(exc).__name__, exc)

