"""The job master: a job's control on Ray, in an actor of its own.

The checkpoint coordinator, its committer task, restore, the control loop and the restart
strategy run here, as the local executor's own code (:class:`~runtime.executor.ray.attempt.
AttemptExecutor` per attempt, under :class:`~runtime.executor.restart.RestartStrategy` when a
restart policy is given): this actor makes and drives the subtasks' actors, so they are
owned by it (a job master lost takes its subtasks' actors with it, and the driver restarts
the whole from the latest completed checkpoint).  The driver
(:class:`~runtime.executor.ray.executor.RayExecutor`, ``hub run``) only starts it, forwards
stop and savepoint requests, and pulls :meth:`JobMaster.snapshot` to feed its own metrics.

A threaded actor: :meth:`run` holds one thread for the job's length, the requests and the
snapshots take others (each returns at once, but a savepoint's answer, which waits for it).
"""
from __future__ import annotations

import logging
import os
import pickle
from concurrent.futures import Future
from typing import Any

from runtime.executor.base import Executor
from runtime.executor.failure import ErrorRecord
from runtime.executor.job import Job, JobResult
from runtime.executor.ray.attempt import AttemptExecutor
from runtime.executor.ray._ray import ray
from runtime.executor.restart import RestartStrategy
from runtime.metrics import PipelineMetrics
from runtime.retry import Backoff

log = logging.getLogger("hub.runtime")

#: The job master's threads: its run, stop and snapshot calls, a few savepoints waiting.
MAX_CONCURRENCY = 8


class JobMaster:
    """Runs ``job`` on the cluster, its counters in ``metrics`` (the driver's so far: a job
    master made again after one was lost goes on counting checkpoints where it left).  With
    ``restart``, the attempts run under that policy (a subtask's actor or node lost: restored
    from the latest completed checkpoint, here); without, :meth:`run` is one attempt (the
    executor contract's).  ``actors``: the first attempt's subtask actors, made by the driver
    (:func:`~runtime.executor.ray.attempt.make_actors`)."""

    def __init__(self, job: Job, metrics: PipelineMetrics, address: str | None, chain: bool,
                 restart: Backoff | None, actors: list[tuple] | None = None):
        self.job = job
        self.metrics = metrics
        #: the lines the restart strategy said (each restart's reason), for the driver to say
        self.said: list[str] = []
        #: the executor of the latest attempt (its subtasks' state, its actors' nodes)
        self.attempt: AttemptExecutor | None = None

        premade = [actors] if actors else []

        def new_attempt(m: PipelineMetrics) -> Executor:
            # the first attempt takes the actors the driver made (started with this one's)
            self.attempt = AttemptExecutor(metrics=m, address=address, chain=chain,
                                           actors=premade.pop() if premade else None)
            return self.attempt

        self.executor: Executor = (
            RestartStrategy(new_attempt, restart, job.storage, metrics, notify=self._say)
            if restart is not None else new_attempt(metrics))

    def _say(self, line: str) -> None:
        # said by the driver (its notify); only logged here (a warning would reach the
        # driver's terminal a second time, through Ray's forwarding of the actor's stderr)
        log.info("%s", line)
        self.said.append(line)

    def run(self) -> tuple[JobResult | None, ErrorRecord | None]:
        """Run the job to its end: its result, or the record of the error that ended it (the
        driver raises it again, same class and transient flag)."""
        try:
            return self.executor.run(self.job), None
        except BaseException as exc:  # noqa: BLE001 - crosses to the driver, raised there
            return None, ErrorRecord.of(exc)

    def request_stop(self, savepoint: str | None) -> None:
        self.executor.request_stop(savepoint)

    def savepoint(self, name: str, stop: bool) -> tuple[str, bool]:
        """Take savepoint ``name`` (then stop, when ``stop``); returns once it is durable, or
        refused: its folder, or why not, and which of both."""
        answer: Future = Future()

        def reply(text: str, ok: bool) -> None:
            if not answer.done():
                answer.set_result((text, ok))

        self.executor.request_savepoint(name, reply, stop)
        return answer.result()

    def snapshot(self, said: int, known: Any = None) -> tuple:
        """What the driver shows of the job: the metrics (pickled here: a subtask's poll may
        add a gauge meanwhile, retried then), the restart lines from the ``said``-th on, the
        records sent to the dead letters in all, the node of each of the latest attempt's
        actors, which of its source and sink subtasks run, and its actors (``(key, handles)``,
        None when they are still those of ``known``): the driver kills them when this actor
        is lost, rather than wait for Ray to (a writer must not prepare after the restore); and
        whether it waits between two attempts after a failure (the service says RESTARTING)."""
        for tries in range(5):
            try:
                metrics = pickle.dumps(self.metrics)
                break
            except RuntimeError:  # a dict or deque changed size while pickled: again
                if tries == 4:
                    raise
        attempt = self.attempt
        sources = [t.is_alive() for t in attempt.sources] if attempt else []
        sinks = [t.is_alive() for t in attempt.sinks] if attempt else []
        hosted = list(attempt.hosted) if attempt else []
        key = (id(attempt), len(hosted))
        actors = None if key == known else (key, [h.actor for h in hosted])
        restarting = isinstance(self.executor, RestartStrategy) and self.executor.current is None
        return (metrics, self.said[said:], self.job.dead_letter.count,
                list(getattr(attempt, "nodes", [])), sources, sinks, actors, restarting)

    def pid(self) -> int:
        """This actor's process id (the tests kill it)."""
        return os.getpid()

    def node(self) -> str:
        return ray.get_runtime_context().get_node_id()
