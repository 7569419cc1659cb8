"""The executor interface: what runs a job, whatever runs its subtasks (threads, Ray actors).

An :class:`Executor` runs one :class:`~runtime.executor.job.Job` to its end and takes requests
from other threads meanwhile (stop, savepoint).  The contract every executor keeps (and the
suite in ``tests/contract`` checks, parametrised by executor):

* **Plain data across the boundary.**  Everything a subtask receives or reports (splits,
  split states, committables, writer states, barriers, acks, errors) is plain, picklable
  data (:data:`runtime.executor.messages.CROSSING`); an error crosses as an
  :class:`~runtime.executor.failure.ErrorRecord` and is rebuilt on the control side as the
  same class, with its transient flag and the subtask it came from.  The ``Source`` and
  ``Sink`` objects are shipped to the subtasks as they are (pickled by a distributed
  executor), so nothing may be shared between a writer and the committer, or a reader and the
  enumerator, except through the external system and these messages.
* **One attempt.**  :meth:`Executor.run` runs the job once: it returns a
  :class:`~runtime.executor.job.JobResult` when a bounded input ended (``finished``, after a
  final checkpoint) or a stop was asked for (``stopped``, after a final checkpoint or
  savepoint), and raises the error that ended it otherwise.  The failure of any subtask fails
  the whole attempt (subtasks are cancelled, what was prepared for checkpoints that will never
  complete is released); the last completed checkpoint stays the one to resume from.  There
  is no partial (per-region) failover: restarting is the job of
  :class:`~runtime.executor.restart.RestartStrategy`, which runs a new attempt from the latest
  checkpoint, where the enumerator's state holds the splits assigned after it (so no split of
  a failed reader needs handing back: ``SplitEnumerator`` has no ``add_splits_back``).
* **Restore.**  ``job.restore`` is the checkpoint to resume from: its committables are
  committed again (idempotently) before anything is written, readers get their splits back
  (dealt out again when the parallelism changed), writers their states (redistributed by a
  sink that says how, :class:`~runtime.rescale.SupportsWriterStateRescale`, or the restore is
  refused in one line).
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable

from runtime.executor.job import Job, JobResult
from runtime.metrics import PipelineMetrics

#: ``reply(path_or_reason, ok)``: how a savepoint's requester is told its folder, or why not.
SavepointReply = Callable[[str, bool], None]

#: What a savepoint request is answered with while no attempt runs (between two attempts).
NOT_RUNNING = "the pipeline is restarting; try again in a moment"


class Executor(ABC):
    """Runs jobs.  ``metrics`` are the counters of what it runs (the progress display and the
    service read them)."""

    metrics: PipelineMetrics

    @abstractmethod
    def run(self, job: Job) -> JobResult:
        """Run ``job`` once, in the calling thread, until it finished, stopped or failed (then
        the error is raised: a :class:`~runtime.errors.HubError` whose ``transient`` says
        whether a restart may help, or the class of an untranslated error, a bug)."""

    @abstractmethod
    def request_stop(self, savepoint: str | None = None) -> None:
        """Stop gracefully: one final checkpoint (savepoint ``savepoint`` when named), then
        :meth:`run` returns ``stopped``.  Thread-safe; may come before :meth:`run` (then the
        job stops right after it started).  A second request changes nothing."""

    @abstractmethod
    def request_savepoint(self, name: str, reply: SavepointReply | None = None,
                          stop: bool = False) -> None:
        """Take savepoint ``name`` (and stop after it when ``stop``).  ``reply(path, True)``
        once it is durable, ``reply(reason, False)`` when it can't be taken (the job failed or
        ended first, no job is running).  Thread-safe; ``reply`` runs on the executor's side,
        only the request's plain data reaches the job."""
