"""The restart strategy: after a transient error, run the job again from its latest checkpoint.

Flink's exponential-delay restart strategy: an attempt that ends with a transient error (the
connector marked it: a lost connection, a 503) is followed by a new attempt from the latest
completed checkpoint, after a wait that grows as :class:`~runtime.retry.Backoff` says.
Terminal errors end the run at once, and so do transient ones beyond ``backoff.retries`` in a
row without a completed checkpoint in between (a completed checkpoint resets the count).

Each attempt runs on a new executor (:class:`~runtime.executor.base.Executor`, from
``new_executor``) and, when a ``build`` function is given, with a newly built job: building
it (connectors made and checked) is part of the attempt, so a server down at a restart is
retried like any other transient error.
"""
from __future__ import annotations

import dataclasses
import logging
import threading
from collections.abc import Callable

from runtime.checkpoint.storage import CheckpointStorage, CompletedCheckpoint
from runtime.errors import HubError
from runtime.executor.base import NOT_RUNNING, Executor, SavepointReply
from runtime.executor.job import Job, JobResult
from runtime.metrics import PipelineMetrics
from runtime.retry import Backoff

log = logging.getLogger("hub.runtime")

#: Builds the job of an attempt from the checkpoint to restore (None: from the beginning).
JobBuilder = Callable[[CompletedCheckpoint | None], Job]


class RestartStrategy(Executor):
    """An executor that runs each attempt on a new inner executor and restarts after
    transient errors.  Stop and savepoint requests go to the attempt running; a stop during a
    wait ends the run (``stopped``, at the latest checkpoint); a savepoint asked for between
    two attempts is refused with :data:`~runtime.executor.base.NOT_RUNNING`."""

    def __init__(self, new_executor: Callable[[PipelineMetrics], Executor], backoff: Backoff,
                 storage: CheckpointStorage, metrics: PipelineMetrics,
                 notify: Callable[[str], None] | None = None):
        """``new_executor(metrics)`` makes the executor of one attempt; ``notify`` gets the
        one line said at each restart (default: a warning in the log)."""
        self.new_executor = new_executor
        self.backoff = backoff
        self.storage = storage
        self.metrics = metrics
        self.notify = notify or log.warning
        self._lock = threading.Lock()
        self._current: Executor | None = None
        self._stop: tuple[str | None] | None = None
        self._stopped = threading.Event()

    @property
    def current(self) -> Executor | None:
        """The executor of the attempt running (None between attempts): read-only use by
        status readers (the service's subtask view)."""
        return self._current

    # -- requests -----------------------------------------------------------------------------
    def request_stop(self, savepoint: str | None = None) -> None:
        with self._lock:
            if self._stop is None:
                self._stop = (savepoint,)
            current, savepoint = self._current, self._stop[0]
        self._stopped.set()
        if current is not None:
            current.request_stop(savepoint)

    def request_savepoint(self, name: str, reply: SavepointReply | None = None,
                          stop: bool = False) -> None:
        with self._lock:
            current = self._current
        if current is not None:
            current.request_savepoint(name, reply, stop)
        elif reply is not None:
            reply(NOT_RUNNING, False)

    # -- the run ------------------------------------------------------------------------------
    def run(self, job: Job) -> JobResult:
        """Run ``job``; later attempts run it again from the latest checkpoint."""
        first = [True]

        def build(restore: CompletedCheckpoint | None) -> Job:
            if first[0]:
                first[0] = False
                return job
            return dataclasses.replace(job, restore=restore)

        return self.run_built(build, job.restore)

    def run_built(self, build: JobBuilder, restore: CompletedCheckpoint | None,
                  first_error: HubError | None = None) -> JobResult:
        """Run the job ``build(restore)`` makes; after a transient error, the job
        ``build(<latest checkpoint>)`` makes.  ``first_error`` is a transient error met before
        (a server down at start): the run begins with its wait."""
        failures = 0
        error = first_error
        completed_before = self.metrics.checkpoints_completed
        while True:
            if error is None:
                completed_before = self.metrics.checkpoints_completed
                try:
                    return self._attempt(build, restore)
                except HubError as exc:
                    if not exc.transient:
                        raise
                    error = exc
            failures = 1 if self.metrics.checkpoints_completed > completed_before else failures + 1
            # the next failure counts from here: one that comes before any new run (the storage
            # unreachable while restoring) is one more in a row, with a longer wait
            completed_before = self.metrics.checkpoints_completed
            if self.backoff.exhausted(failures):
                raise HubError(f"{error} (gave up after {self.backoff.retries} restarts)") \
                    from error
            delay = self.backoff.delay(failures)
            limit = "" if self.backoff.retries is None else f" of {self.backoff.retries}"
            self.notify(f"{error}: restarting from the latest checkpoint in {delay:.1f}s "
                        f"(attempt {failures}{limit})")
            error = None
            if self._stopped.wait(delay):
                latest = self.storage.latest()
                return JobResult("stopped", latest.checkpoint_id if latest else None)
            try:
                restore = self.storage.latest()
            except HubError as exc:  # its storage unreachable too (an HDFS DataNode down)
                if not exc.transient:
                    raise
                error = exc

    def _attempt(self, build: JobBuilder, restore: CompletedCheckpoint | None) -> JobResult:
        job = build(restore)
        executor = self.new_executor(self.metrics)
        with self._lock:
            self._current = executor
            stop = self._stop
        if stop is not None:
            executor.request_stop(stop[0])
        try:
            return executor.run(job)
        finally:
            with self._lock:
                self._current = None
