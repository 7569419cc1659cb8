"""The Ray executor: the local executor's control, its subtasks as Ray actors.

Everything that decides (the control loop, the split enumerator, the checkpoint coordinator
and its committer task, restore, release after a failure) is the local executor's, run in
this driver process: :class:`RayExecutor` overrides only where subtasks live
(:meth:`_create_subtasks`, :meth:`_shutdown`).  Subtask ``i`` of the source and of the sink
run as two actors (:class:`~runtime.executor.ray.actor.SubtaskActor`) on the same node, the
pairs spread over the cluster's live nodes, so a batch crosses the object store of one node.
A driver-side proxy (:class:`_RemoteTask`) gives the control loop what it uses of a subtask
thread (``control.put``, ``is_alive``, ``join``); one poller thread brings the actors'
messages to the control loop's inbox and turns a lost actor (process or node killed) into a
transient failure of the attempt, which the restart strategy restores from the latest
completed checkpoint, as with the local executor.

Requires: every node runs the same Python with the hub installed (the actors import the
connectors); the checkpoint storage is a path every node sees (checked at start,
:func:`~runtime.executor.ray.cluster.check_shared`).
"""
from __future__ import annotations

import logging
import threading
import time
from collections import defaultdict
from typing import Any

from runtime.errors import TransientError
from runtime.executor import local
from runtime.executor import messages as m
from runtime.executor.failure import operator_of
from runtime.executor.job import Job
from runtime.executor.local import LocalExecutor
from runtime.executor.ray import cluster
from runtime.executor.ray._ray import ray
from runtime.executor.ray.actor import MAX_CONCURRENCY, SubtaskActor
from runtime.metrics import PipelineMetrics

log = logging.getLogger("hub.runtime")

#: How long one poll of an actor waits for its first message.
POLL_S = 0.2


class _Control:
    """A subtask's control queue, seen from the driver: numbered calls on its actor."""

    def __init__(self, actor: Any):
        self._actor = actor
        self._seq = 0
        self._lock = threading.Lock()

    def put(self, msg: Any) -> None:
        with self._lock:  # the number and the call in one order
            self._actor.control.remote(self._seq, msg)
            self._seq += 1


class _RemoteTask:
    """What the local executor's control loop and shutdown use of a subtask, for an actor."""

    def __init__(self, name: str, subtask: int, actor: Any, start: Any):
        self.name = name
        self.subtask = subtask
        self.actor = actor
        self.control = _Control(actor)
        self.cancelled = threading.Event()
        self.ident: int | None = None
        self._start = start
        self.ended = threading.Event()

    def start(self) -> None:
        self._start()
        self.ident = 1

    def is_alive(self) -> bool:
        return self.ident is not None and not self.ended.is_set()

    def join(self, timeout: float | None = None) -> None:
        self.ended.wait(timeout)


class RayExecutor(LocalExecutor):
    """Runs one job once on a Ray cluster (``address``: default ``RAY_ADDRESS``, else a
    local one).  Every crossing message is pickled, as the contract says it may be."""

    def __init__(self, job: Job | None = None, metrics: PipelineMetrics | None = None,
                 address: str | None = None):
        super().__init__(job, metrics, serialize=True)
        self.address = address
        self._poller: threading.Thread | None = None
        self._polling = threading.Event()

    def _create_subtasks(self, job: Job, sources: list, sinks: list,
                         reader_states: list[list[dict]], writer_states: list[dict | None]
                         ) -> list:
        cluster.connect(self.address)
        nodes = cluster.alive_nodes()
        cluster.check_shared(job.storage.root, nodes)
        p = job.parallelism
        Actor = ray.remote(SubtaskActor)
        for i in range(p):
            # pair i on node i mod n: a batch never leaves its node
            where = ray.util.scheduling_strategies.NodeAffinitySchedulingStrategy(
                nodes[i % len(nodes)]["NodeID"], soft=False)
            opts = dict(num_cpus=0, max_concurrency=MAX_CONCURRENCY, max_restarts=0,
                        scheduling_strategy=where)
            sink_name = f"sink-{i} ({operator_of(job.sink)} writer)"
            source_name = f"source-{i} ({operator_of(job.source)} reader)"
            sink_actor = Actor.options(**opts).remote(f"sink-{i}", i, p)
            source_actor = Actor.options(**opts).remote(f"source-{i}", i, p)
            ctx = self.writer_context(job, i)
            self.sinks.append(_RemoteTask(sink_name, i, sink_actor, _starter(
                sink_actor.start_sink, sinks[i], ctx, writer_states[i], job.channel_capacity,
                job.channel_bytes)))
            self.sources.append(_RemoteTask(source_name, i, source_actor, _starter(
                source_actor.start_source, sources[i], p, reader_states[i], sink_actor,
                job.watermarks, job.dead_letter)))
        # every actor up before any subtask starts (a worker process each: seconds on a busy
        # node), so that no subtask runs long before its partner is there
        try:
            self.nodes = ray.get([t.actor.node.remote() for t in self.sources + self.sinks])
        except ray.exceptions.RayError as exc:  # a node lost a moment ago, still listed alive
            raise TransientError(f"the subtasks' Ray actors could not be placed: "
                                 f"{type(exc).__name__}: {str(exc).splitlines()[0]}") from None
        self._polling.set()
        self._poller = threading.Thread(target=self._poll, name="ray-poller", daemon=True)
        self._poller.start()
        return []

    def _poll(self) -> None:
        """Bring what the actors report to the inbox, their counters to the metrics; an actor
        lost fails the attempt (transient: a restart may find the node back, or another)."""
        tasks = {id(t): t for t in self.sources + self.sinks}
        refs: dict[Any, _RemoteTask] = {}
        lost = False
        while self._polling.is_set():
            for t in tasks.values():
                if t.is_alive() and t not in refs.values():
                    refs[t.actor.poll.remote(POLL_S)] = t
            if not refs:
                time.sleep(POLL_S)
                continue
            ready, rest = ray.wait(list(refs), num_returns=1, timeout=POLL_S * 2)
            if ready and rest:  # every answer there, not one per round
                ready += ray.wait(rest, num_returns=len(rest), timeout=0)[0]
            for ref in ready:
                t = refs.pop(ref)
                try:
                    msgs, alive, slots, gauges = ray.get(ref)
                except ray.exceptions.RayError as exc:
                    t.ended.set()
                    if not lost and not t.cancelled.is_set():
                        lost = True
                        self.inbox.put(m.TaskFailed(t.name, TransientError(
                            f"{t.name}: its Ray actor was lost ({type(exc).__name__}: "
                            f"{str(exc).splitlines()[0] if str(exc) else ''})")))
                    continue
                for msg in msgs:
                    self.inbox.put(msg)
                for name, value in slots.items():  # this subtask's slot of each list
                    getattr(self.metrics, name)[t.subtask] = (
                        defaultdict(int, value) if isinstance(value, dict) else value)
                for name, (agg, values) in gauges.items():
                    for reporter, value in values.items():
                        self.metrics.set_gauge(reporter, name, value, agg)
                if not alive:
                    t.ended.set()

    def _shutdown(self, gates: list, failed: bool) -> None:
        tasks = self.sources + self.sinks
        if failed:
            for t in tasks:
                t.cancelled.set()
                try:
                    t.actor.cancel.remote()
                except Exception:  # noqa: BLE001 - an actor already lost
                    log.debug("%s: cancel not sent", t.name, exc_info=True)
        deadline = time.monotonic() + (local.FAILED_JOIN_S if failed else local.JOIN_S)
        for t in tasks:
            if t.ident is None:
                continue
            t.join(timeout=max(0.0, deadline - time.monotonic()))
            if t.is_alive():
                log.error("%s did not stop within %gs; its actor is killed", t.name,
                          local.FAILED_JOIN_S if failed else local.JOIN_S)
        self._polling.clear()
        if self._poller is not None:
            self._poller.join(timeout=5)
        for t in tasks:
            try:
                ray.kill(t.actor, no_restart=True)
            except Exception:  # noqa: BLE001 - gone already
                log.debug("%s: actor already gone", t.name, exc_info=True)


def _starter(method: Any, *args: Any):
    return lambda: method.remote(*args)
