"""The committer task: commits completed checkpoints in a thread of its own, in order.

The checkpoint coordinator hands it requests (:class:`CommitCheckpoint` once a checkpoint is
durable, :class:`AbortCheckpoint` for what a checkpoint that will never complete prepared) and
gets plain reports back (:class:`CheckpointCommitted`, :class:`CommitFailed`) through the
queue it was started with (the executor's inbox), so that the control thread goes on serving
triggers, acknowledgements, split requests and savepoints while a commit runs.

Guarantees:

* Requests are served one at a time, in the order given: a checkpoint's commit starts only
  once the one before is done (:meth:`Committer.commit_each` outcomes all done, already
  committed or "not yet").
* A committable to retry is tried again alone, with :data:`COMMIT_RETRY` (the one retry policy,
  :mod:`runtime.retry`); the others of its checkpoint are not committed again.
* After a failed commit (retries used up, a failed committable, a bug) no later checkpoint is
  committed: the job fails, and the restart commits them from the latest stored checkpoint.
* The committer is only ever called from one thread at a time: :meth:`CommitterTask.process`
  runs inline (recovery before the thread starts, or a coordinator without a thread) or in the
  thread, never both.
"""
from __future__ import annotations

import logging
import os
import queue
import threading
from collections import Counter
from dataclasses import dataclass, field

from runtime.deadletter import DeadLetterQueue
from runtime.errors import HubError, TerminalError, TransientError
from runtime.executor.failure import describe, locate, operator_of
from runtime.faults import crash_point
from runtime.retry import Backoff, retry
from runtime.sink import CommitContext, Committable, Committer, Outcome

log = logging.getLogger("hub.checkpoint")

#: Commit retries: 0.2 s, then twice as long each time up to 5 s, four retries (about 3 s in
#: all): a lost connection or a lock held a moment is worth waiting for; beyond that the job's
#: restart strategy takes over (the checkpoint keeps what was not committed).
COMMIT_RETRY = Backoff(initial_s=0.2, max_s=5.0, retries=4)


# -- requests (coordinator -> committer task) ----------------------------------------------------
@dataclass(frozen=True)
class CommitCheckpoint:
    """Commit ``committables`` of the durable checkpoint ``checkpoint_id``.  ``recover``: the
    restored checkpoint's, before any writer starts (:meth:`Committer.recover`)."""

    checkpoint_id: int
    committables: list[Committable]
    watermark_ms: int | None
    recover: bool = False


@dataclass(frozen=True)
class AbortCheckpoint:
    """Release what checkpoint ``checkpoint_id`` prepared: it will never complete."""

    checkpoint_id: int
    committables: list[Committable]
    reason: str


# -- reports (committer task -> coordinator) ----------------------------------------------------
@dataclass(frozen=True)
class CheckpointCommitted:
    """The commit of ``checkpoint_id`` is done; ``not_yet`` are to be offered again with the
    next checkpoint.  ``outcomes``: how many committables ended how (``Outcome`` values);
    ``gauges``: the committer's (:meth:`Committer.gauges`), read after the commit."""

    checkpoint_id: int
    not_yet: list[Committable]
    outcomes: dict[str, int] = field(default_factory=dict)
    gauges: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class CommitFailed:
    """The commit of ``checkpoint_id`` failed: ``error`` is its one line, ``transient`` whether
    a restart may help.  The checkpoint is stored: the restart commits it again.  ``where``
    is set for an exception no connector translated (a bug): where it happened, ``error``
    then being its qualified type and message."""

    checkpoint_id: int
    error: str
    transient: bool
    where: str | None = None

    def exception(self) -> BaseException:
        """The error to end the job with, of the kind the restart strategy tells apart."""
        if self.where is not None:
            return locate(CommitterBug(self.error), self.where)
        return (TransientError if self.transient else TerminalError)(self.error)


class CommitterBug(Exception):
    """An exception no connector translated, met by the committer task: a bug to report.  Its
    message is the original's qualified type and message (the task reports plain data)."""


class _Stop:
    pass


class CommitterTask:
    """Serves :class:`CommitCheckpoint` and :class:`AbortCheckpoint` requests with
    ``committer``, inline (:meth:`process`) or, once :meth:`start` ed, in its own thread."""

    def __init__(self, committer: Committer, pipeline: str, state_dir: str, job_id: str,
                 policy: Backoff = COMMIT_RETRY, dead_letter: DeadLetterQueue | None = None):
        self.committer = committer
        self.pipeline, self.state_dir, self.job_id = pipeline, state_dir, job_id
        #: the job's, handed to every commit (:attr:`CommitContext.dead_letter`)
        self.dead_letter = dead_letter if dead_letter is not None else DeadLetterQueue()
        self.policy = policy
        self._requests: queue.Queue = queue.Queue()
        self._reports: queue.Queue | None = None
        self._thread: threading.Thread | None = None
        #: set at :meth:`stop`: ends a retry's wait early
        self._stopping = threading.Event()
        #: at :meth:`stop` after a failure: commits not started are left to the restart
        self._discard = False
        #: a commit failed: no later one may run (they would overtake it)
        self._failed = False

    @property
    def running(self) -> bool:
        return self._thread is not None

    def start(self, reports: queue.Queue) -> None:
        """Serve requests in a thread from now on; reports go to ``reports``."""
        self._reports = reports
        self._thread = threading.Thread(target=self._run, name="committer", daemon=True)
        self._thread.start()

    def submit(self, request: CommitCheckpoint | AbortCheckpoint) -> None:
        """Queue ``request`` for the thread (after every request queued before)."""
        assert self._thread is not None, "the committer task is not started"
        self._requests.put(request)

    def stop(self, discard_commits: bool, wait_s: float) -> bool:
        """Serve what is queued (commits only unless ``discard_commits``: after a failure
        they are left to the restart, which commits them from the stored checkpoint; aborts
        always) and end the thread, waiting up to ``wait_s``.  False when the thread is still
        busy then (a commit that hangs): it is left behind, a daemon thread."""
        if self._thread is None:
            return True
        self._discard = discard_commits
        if discard_commits:
            self._stopping.set()  # a retry's wait ends now: its checkpoint is stored anyway
        self._requests.put(_Stop())
        self._thread.join(wait_s)
        if self._thread.is_alive():
            log.error("the committer did not finish within %gs; left behind (what it commits "
                      "is in the latest checkpoint: the next start commits it)", wait_s)
            return False
        return True

    def _run(self) -> None:
        assert self._reports is not None
        while True:
            request = self._requests.get()
            if isinstance(request, _Stop):
                return
            if isinstance(request, CommitCheckpoint) and (self._failed or self._discard):
                log.info("checkpoint %d: its commit is left to the next start (the job %s; "
                         "the checkpoint is stored)", request.checkpoint_id,
                         "ends" if self._discard else "failed on an earlier commit")
                continue
            try:
                report = self.process(request)
            except BaseException as exc:  # noqa: BLE001 - process reports every error; a bug here
                log.exception("the committer task failed")
                report = CommitFailed(getattr(request, "checkpoint_id", 0),
                                      f"the committer task failed: {describe(exc)}", False)
            if isinstance(report, CommitFailed):
                self._failed = True
            if report is not None:
                self._reports.put(report)

    # -- the work -----------------------------------------------------------------------------
    def process(self, request: CommitCheckpoint | AbortCheckpoint
                ) -> CheckpointCommitted | CommitFailed | None:
        """Serve one request in the calling thread; the report (None for an abort)."""
        if isinstance(request, AbortCheckpoint):
            self._abort(request)
            return None
        cid = request.checkpoint_id
        ctx = CommitContext(self.pipeline, cid, request.watermark_ms, self.state_dir,
                            self.job_id, self.dead_letter)
        what = f"{'recovering' if request.recover else 'committing'} checkpoint {cid}"
        stop = self._stopping if self.running else None
        try:
            if request.recover:
                not_yet = list(retry(lambda: self.committer.recover(request.committables, ctx),
                                     self.policy, what, log, stop=stop))
                outcomes: Counter[str] = Counter({Outcome.DONE.value: len(request.committables)})
            else:
                not_yet, outcomes = self._commit(request.committables, ctx, what, stop)
        except HubError as exc:
            return CommitFailed(cid, str(exc), exc.transient)
        except Exception as exc:  # noqa: BLE001 - untranslated: a bug to report, with where
            place = f"the committer ({operator_of(self.committer)}) {what}"
            log.error("in %s: %s", place, describe(exc), exc_info=exc)
            return CommitFailed(cid, describe(exc), False, place)
        crash_point("checkpoint-committed", cid)
        gauges = dict(self.committer.gauges())  # e.g. writes the store refused
        return CheckpointCommitted(cid, not_yet, dict(outcomes), gauges)

    def _commit(self, committables: list[Committable], ctx: CommitContext, what: str,
                stop: threading.Event | None) -> tuple[list[Committable], Counter[str]]:
        """Commit with per-committable outcomes; only those to retry are tried again."""
        todo = list(committables)
        not_yet: list[Committable] = []
        counts: Counter[str] = Counter()

        def attempt() -> None:
            nonlocal todo
            again, errors = [], []
            for o in self.committer.commit_each(todo, ctx):
                if o.outcome is Outcome.FAILED:
                    raise o.error if o.error is not None and not o.error.transient else \
                        TerminalError(f"{what}: {o.error or 'a committable failed'} "
                                      f"({o.committable})")
                if o.outcome is Outcome.RETRY_LATER and o.error is not None:
                    again.append(o.committable)
                    errors.append(o.error)
                    continue
                counts[o.outcome.value] += 1
                if o.outcome is Outcome.RETRY_LATER:
                    not_yet.append(o.committable)
            todo = again
            if again:
                raise TransientError(f"{len(again)} of {len(committables)} committables not "
                                     f"committed: {errors[0]}")

        retry(attempt, self.policy, what, log, stop=stop)
        return not_yet, counts

    def _abort(self, request: AbortCheckpoint) -> None:
        """Best effort: a failure is logged, :meth:`Committer.recover` rolls back later."""
        ctx = CommitContext(self.pipeline, request.checkpoint_id, None, self.state_dir,
                            self.job_id, self.dead_letter)
        try:
            self.committer.abort(request.committables, ctx)
            log.info("checkpoint %d will never complete (%s): released what it prepared "
                     "(%d committables)", request.checkpoint_id, request.reason,
                     len(request.committables))
        except Exception as exc:  # noqa: BLE001 - best effort: recover() rolls back later
            log.warning("checkpoint %d: releasing what it prepared failed (%s: %s); it is "
                        "rolled back at the next start", request.checkpoint_id,
                        type(exc).__name__, exc, exc_info=os.environ.get("HUB_DEBUG") == "1")
