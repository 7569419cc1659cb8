"""The Ray executor, as the driver (``hub run``) sees it: the job's control in a job master.

:class:`RayExecutor` starts the job's job master (:class:`~runtime.executor.ray.master.
JobMaster`, an actor on the driver's node, no CPU of the cluster's reserved), which runs the
job's attempts (coordinator, committer, restore, control loop, restarts) and makes the
subtasks' actors (:mod:`runtime.executor.ray.attempt`).  Meanwhile the driver forwards stop
and savepoint requests to it and pulls its snapshot every :data:`PULL_S` into this
executor's metrics, so the progress display, ``hub serve`` and ``/metrics`` see a Ray pipeline
as a local one.  The job master lost (its process or node killed) ends the run with a
transient error: the driver's restart strategy (``hub run``'s, the same ``[restart]``
policy) makes a new one from the latest completed checkpoint, which the checkpoint storage
(a path every node sees) lets it restore on any node.

Requires: every node runs the same Python with the hub installed (the actors import the
connectors); the checkpoint storage is a path every node sees (checked at start,
:meth:`SubtaskActor.where <runtime.executor.ray.actor.SubtaskActor.where>`).
"""
from __future__ import annotations

import dataclasses
import logging
import pickle
import threading
import time
from collections.abc import Callable
from typing import Any

from runtime.errors import TransientError
from runtime.executor.base import Executor, SavepointReply
from runtime.executor.job import Job, JobResult
from runtime.executor.ray import cluster
from runtime.executor.ray._ray import ray
from runtime.executor.ray.attempt import make_actors, ray_result
from runtime.executor.ray.master import MAX_CONCURRENCY, JobMaster
from runtime.metrics import PipelineMetrics
from runtime.retry import Backoff

log = logging.getLogger("hub.runtime")

#: How often the driver pulls the job master's counters (one small call).
PULL_S = 0.25
#: How long a pull may take before it is given up (the next one tries again).
PULL_TIMEOUT_S = 10.0
#: The driver's own counters, never taken from the job master's: its start, and the records
#: sent to the dead letters (counted into the driver's queue, which counts them here).
_OWN = frozenset({"parallelism", "started_at", "dead_letters"})
#: How long a job master lost may take to be confirmed dead before a new one starts.
GONE_S = 60.0
ENDED = "the job ended before the savepoint could be taken"


class _Subtask:
    """A subtask as the service's status sees it: whether it runs (from the last pull)."""

    def __init__(self, alive: bool):
        self._alive = alive

    def is_alive(self) -> bool:
        return self._alive


class RayExecutor(Executor):
    """Runs one job on a Ray cluster (``address``: default ``RAY_ADDRESS``, else a local
    one) through its job master.  ``chain``: source and sink subtask ``i`` in one actor
    (Flink's ``pipeline.operator-chaining``).  ``restart``: the restart policy the job master
    applies to a subtask's actor or node lost (None: :meth:`run` is one attempt, as the
    executor contract says; ``hub run`` gives ``[restart]``); ``notify`` gets each restart's
    line said there."""

    def __init__(self, job: Job | None = None, metrics: PipelineMetrics | None = None,
                 address: str | None = None, chain: bool = True,
                 restart: Backoff | None = None, notify: Callable[[str], None] | None = None):
        self.job = job
        self.metrics = metrics or PipelineMetrics(job.parallelism if job else 1)
        self.address = address
        self.chain = chain
        self.restart = restart
        self.notify = notify or log.warning
        #: the job master's actor, once made, and the subtasks' actors made for its first attempt
        self.master: Any = None
        self.actors: list[Any] = []
        #: the node of each subtask's actor, and which subtasks run (from the last pull)
        self.nodes: list[str] = []
        self.sources: list[_Subtask] = []
        self.sinks: list[_Subtask] = []
        #: the job master waits between two attempts after a failure (from the last pull)
        self.restarting = False
        self._lock = threading.Lock()
        self._stop: tuple[str | None] | None = None
        self._waiting: list[tuple[str, SavepointReply | None, bool]] = []
        self._answers: list[Any] = []
        self._ended = False
        self._said = 0
        self._dead_letters = 0
        #: the latest attempt's subtask actors as the job master said them: (its key, them)
        self._attempt_actors: tuple[Any, list[Any]] = (None, [])

    # -- requests (thread-safe; before the run too) ---------------------------------------------
    def request_stop(self, savepoint: str | None = None) -> None:
        with self._lock:
            if self._stop is None:
                self._stop = (savepoint,)
            master, savepoint = self.master, self._stop[0]
        if master is not None:
            master.request_stop.remote(savepoint)

    def request_savepoint(self, name: str, reply: SavepointReply | None = None,
                          stop: bool = False) -> None:
        with self._lock:
            ended, master = self._ended, self.master
            if not ended and master is None:
                self._waiting.append((name, reply, stop))
                return
        if ended:
            if reply is not None:
                reply(ENDED, False)
            return
        self._forward(master, name, reply, stop)

    def _forward(self, master: Any, name: str, reply: SavepointReply | None, stop: bool) -> None:
        ref = master.savepoint.remote(name, stop)
        with self._lock:
            self._answers.append(ref)
        if reply is not None:
            threading.Thread(target=self._answer, args=(ref, reply), daemon=True,
                             name=f"savepoint-{name}").start()

    @staticmethod
    def _answer(ref: Any, reply: SavepointReply) -> None:
        try:
            text, ok = ray.get(ref)
        except ray.exceptions.RayError as exc:
            text, ok = f"the job master was lost before the savepoint ({type(exc).__name__})", \
                False
        try:
            reply(text, ok)
        except Exception as exc:  # noqa: BLE001
            log.warning("could not answer a savepoint request: %s", exc)

    # -- the run --------------------------------------------------------------------------------
    def run(self, job: Job | None = None) -> JobResult:
        job = job or self.job
        if job is None:
            raise RuntimeError("RayExecutor.run: no job given")
        if self.master is not None or self._ended:
            raise RuntimeError("a RayExecutor runs one job once; make a new one")
        self.job = job
        cluster.connect(self.address)
        # on the driver's node (the head, usually): a node of the workers lost leaves the
        # job's control where it was (that node lost, the driver is gone too).  Hard: with
        # soft affinity Ray placed it on the other node of the two-node test cluster
        here = ray.util.scheduling_strategies.NodeAffinitySchedulingStrategy(
            ray.get_runtime_context().get_node_id(), soft=False)
        self._dead_letters = job.dead_letter.count
        try:
            # the first attempt's subtask actors made here, now: their processes start while
            # the job master's does, not after it (a process start is ~1 CPU-s here); the
            # job master's first attempt takes them, kills them at its end
            pairs = make_actors(job.parallelism, self.chain, cluster.alive_nodes())
            self.actors = [a for pair in pairs for a in pair]
            master = ray.remote(JobMaster).options(
                num_cpus=0, max_concurrency=MAX_CONCURRENCY, max_restarts=0,
                scheduling_strategy=here, enable_task_events=False,
            ).remote(job, self.metrics, self.address, self.chain, self.restart, pairs)
            with self._lock:
                self.master = master
                stop, waiting, self._waiting = self._stop, self._waiting, []
            if stop is not None:
                master.request_stop.remote(stop[0])
            for name, reply, sp_stop in waiting:
                self._forward(master, name, reply, sp_stop)
            done = master.run.remote()
            while not ray.wait([done], timeout=PULL_S)[0]:
                self._pull(master)
            self._pull(master)  # the counters as the job left them
            try:
                result, error = ray_result(done, "job master", "the job's run")
            except TransientError:  # lost, or unreachable: no new one while it may live
                self._wait_gone(master, "pid")
                # the subtasks' actors: the driver's (a job master lost leaves them running)
                # and the latest attempt's (Ray kills them with their owner, in a while)
                for actor in self.actors + self._attempt_actors[1]:
                    self._wait_gone(actor, "stacks")
                raise
        finally:
            self._end()
        if error is not None:
            raise error.rebuild()
        return result

    def _pull(self, master: Any) -> None:
        """The job master's snapshot into this executor's metrics, its restart lines to
        ``notify``, its dead letters into the job's queue; a job master lost or slow is let
        be (its run's answer says it)."""
        try:
            data, said, dead_letters, nodes, sources, sinks, actors, restarting = ray.get(
                master.snapshot.remote(self._said, self._attempt_actors[0]),
                timeout=PULL_TIMEOUT_S)
        except ray.exceptions.RayError as exc:
            log.debug("the job master's snapshot: %s", type(exc).__name__)
            return
        snapshot: PipelineMetrics = pickle.loads(data)
        for f in dataclasses.fields(PipelineMetrics):
            if f.name not in _OWN:
                setattr(self.metrics, f.name, getattr(snapshot, f.name))
        self._said += len(said)
        for line in said:
            self.notify(line)
        if dead_letters > self._dead_letters:
            self.job.dead_letter.counted(dead_letters - self._dead_letters)
            self._dead_letters = dead_letters
        self.nodes = nodes
        if actors is not None:
            self._attempt_actors = actors
        self.sources = [_Subtask(a) for a in sources]
        self.sinks = [_Subtask(a) for a in sinks]
        self.restarting = restarting

    @staticmethod
    def _wait_gone(actor: Any, ping: str) -> None:
        """Kill the job master (or one of the subtask actors made here) and wait (up to
        :data:`GONE_S`) until Ray says it is dead (its method ``ping`` fails so): one
        unreachable a moment (``ActorUnavailableError``) may still run its job, and two job
        masters of one job must never commit side by side.  Not confirmed within that (its
        node cut off, not yet declared dead): said, and the run ends all the same (Ray kills
        a node's workers when it declares the node dead)."""
        deadline = time.monotonic() + GONE_S
        try:
            ray.kill(actor, no_restart=True)
        except Exception:  # noqa: BLE001 - gone already
            log.debug("an actor of the job: already gone", exc_info=True)
        while time.monotonic() < deadline:
            try:
                ray.get(getattr(actor, ping).remote(), timeout=2.0)
            except (ray.exceptions.ActorUnavailableError, ray.exceptions.GetTimeoutError):
                pass  # unreachable, or no answer yet: again
            except ray.exceptions.RayError:  # dead: killed, or its node or owner gone
                return
            time.sleep(0.2)
        log.warning("an actor of the job master lost was not confirmed dead within %gs; a new "
                    "job master starts", GONE_S)

    def _end(self) -> None:
        """Requests still waiting are told; the job master goes once the answers it gave
        were taken (its actors were stopped by its run)."""
        with self._lock:
            self._ended = True
            master, waiting, self._waiting = self.master, self._waiting, []
            answers = list(self._answers)
        for _, reply, _ in waiting:
            if reply is not None:
                reply(ENDED, False)
        if master is None:
            return
        if answers:
            ray.wait(answers, num_returns=len(answers), timeout=2.0)
        for actor in [master] + self.actors:  # (the subtasks' were killed by the job master)
            try:
                ray.kill(actor, no_restart=True)
            except Exception:  # noqa: BLE001 - gone already
                log.debug("an actor of the job: already gone", exc_info=True)

