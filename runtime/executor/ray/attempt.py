"""One attempt of a job on Ray: the local executor's control, its subtasks as Ray actors.

The checkpoint coordinator and its committer task, restore, release after a failure and the
control loop are the local executor's, run in the job master's actor
(:mod:`runtime.executor.ray.master`; the driver, ``hub run``, only starts that actor and
follows it): :class:`AttemptExecutor`
overrides where subtasks live (:meth:`_create_subtasks`, :meth:`_shutdown`) and where the
split enumerator lives: in reader 0's actor (:mod:`runtime.executor.ray.enumerator`; the
readers' requests and its assignments go actor to actor, not through the control loop's poll;
a checkpoint's trigger goes through it, :meth:`_trigger`).  Subtask ``i`` of the source and of the sink
run chained in one actor (:class:`~runtime.executor.ray.actor.SubtaskActor`), the actors
spread over the cluster's live nodes: a batch never leaves its process (with ``chain`` off,
two actors on one node: a batch crosses that node's object store).
A proxy (:class:`_RemoteTask`) gives the control loop what it uses of a subtask
thread (``control.put``, ``is_alive``, ``join``); one poller thread brings the actors'
messages to the control loop's inbox and turns a lost actor (process or node killed) into a
transient failure of the attempt, which the restart strategy restores from the latest
completed checkpoint, as with the local executor.  (The actors' calls name the control side
"driver", the sender of the control stream, wherever it runs.)

Requires: every node runs the same Python with the hub installed (the actors import the
connectors); the checkpoint storage is a path every node sees (checked at start,
:meth:`SubtaskActor.where <runtime.executor.ray.actor.SubtaskActor.where>`).
"""
from __future__ import annotations

import logging
import threading
import time
from collections import defaultdict
from typing import Any

from runtime.errors import TerminalError, TransientError
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



def ray_result(ref: Any, name: str, what: str, timeout: float | None = None) -> Any:
    """``ray.get(ref)`` of a call to ``name``'s actor, Ray's errors as the hub's: the call
    raised there (its plugin can't be unpickled on the node: a module missing there) is
    terminal; the actor lost, or no answer within ``timeout``, is transient (the job restarts
    from its latest checkpoint)."""
    try:
        return ray.get(ref, timeout=timeout)
    except ray.exceptions.GetTimeoutError:
        raise TransientError(f"the {name} did not answer {what} within {timeout:g}s") from None
    except ray.exceptions.RayTaskError as exc:
        cause = getattr(exc, "cause", None) or exc
        raise TerminalError(f"the {name}, in its Ray actor ({what}): "
                            f"{type(cause).__name__}: {str(cause).splitlines()[0]}") from None
    except ray.exceptions.RayError as exc:
        raise TransientError(f"the {name}: its Ray actor was lost ({what}: "
                             f"{type(exc).__name__})") from None

class _Control:
    """An actor's control calls, seen from the driver: numbered, in one order over the
    subtasks it hosts."""

    def __init__(self, actor: Any):
        self._actor = actor
        self._seq = 0
        self._lock = threading.Lock()

    def put(self, to: str, msg: Any) -> None:
        with self._lock:  # the number and the call in one order
            self._actor.control.remote("driver", self._seq, to, msg)
            self._seq += 1


class _SideControl:
    """A subtask's control queue (``put``), for the control loop: its actor's, addressed."""

    def __init__(self, control: _Control, side: str):
        self._control, self._side = control, side

    def put(self, msg: Any) -> None:
        self._control.put(self._side, msg)


class _RemoteTask:
    """What the local executor's control loop and shutdown use of a subtask, for one hosted
    by an actor (``side``: "source" or "sink"; chained, both sides share the actor; or
    "enumerator": the enumerator hosted by reader 0's actor, polled as a subtask)."""

    def __init__(self, name: str, subtask: int, side: str, actor: Any, control: _Control,
                 start: Any):
        self.name = name
        self.subtask = subtask
        self.side = side
        self.actor = actor
        self.control = _SideControl(control, side) if control is not None else None
        self.cancelled = threading.Event()
        self.ident: int | None = None
        self._start = start
        self._ref: Any = None
        self._launched = False
        #: sends every subtask's start call (:meth:`launch`) at the first start: the actors
        #: unpickle their plugins at once, not one after the other
        self.launch_all: Any = self.launch
        self.ended = threading.Event()

    def launch(self) -> None:
        """Send the start call (once)."""
        if not self._launched:
            self._launched = True
            self._ref = self._start()

    def start(self) -> None:
        """Start it in its actor, and wait for that: a start that fails (its plugin can't be
        unpickled there: a module missing on the node) fails the job instead of leaving
        every later call waiting for it."""
        self.launch_all()
        ref = self._ref
        if ref is not None:
            ray_result(ref, self.name, "its start")
        self.ident = 1

    def is_alive(self) -> bool:
        return self.ident is not None and not self.ended.is_set()

    def join(self, timeout: float | None = None) -> None:
        self.ended.wait(timeout)


class _Hosted:
    """An actor and the subtasks it hosts, as the poller sees them."""

    def __init__(self, actor: Any, tasks: list[_RemoteTask], poll: str = "poll"):
        self.actor = actor
        #: the actor's method that says what they reported
        self.poll = poll
        self.tasks = {t.side: t for t in tasks}
        self.name = " and ".join(t.name for t in tasks)
        #: records its subtasks said they sent to the dead letters (counted into the driver's)
        self.dead_letters = 0

    def is_alive(self) -> bool:
        return any(t.is_alive() for t in self.tasks.values())

    def cancelled(self) -> bool:
        return any(t.cancelled.is_set() for t in self.tasks.values())

    def ended(self) -> None:
        for t in self.tasks.values():
            t.ended.set()


class _RemoteEnumerator:
    """What the control loop uses of the split enumerator, for one in its actor
    (:class:`~runtime.executor.ray.enumerator.EnumeratorHost`, in reader 0's actor): the driver's calls, numbered,
    delivered there in order.  The readers' requests never pass here (their actors call the
    enumerator's); a checkpoint's trigger is :meth:`trigger` (the actor sends the triggers
    to the readers, after the snapshot, in order with its assignments)."""

    def __init__(self, name: str, timeout_s: float):
        self.name = name
        self.actor: Any = None
        #: what its actor makes it from: the source, its state, the parallelism, the readers
        self.args: tuple = ()
        self.task: _RemoteTask | None = None
        self._timeout_s = timeout_s
        self._closed = False
        self._seq = 0
        self._lock = threading.Lock()

    def _send(self, msg: Any) -> Any:
        with self._lock:  # the number and the call in one order
            ref = self.actor.handle.remote("driver", self._seq, msg)
            self._seq += 1
        return ref

    def _get(self, ref: Any, what: str, timeout: float | None = None) -> Any:
        return ray_result(ref, self.name, what, timeout)

    def start(self) -> None:
        record = self._get(self.actor.enumerator_start.remote(*self.args), "its start")
        if record is not None:
            raise record.rebuild()
        self.task.ident = 1  # polled from now on

    def trigger(self, checkpoint_id: int, savepoint: str | None, final: bool) -> dict:
        """Snapshot the enumerator for ``checkpoint_id`` and have the readers triggered;
        its state."""
        state, record = self._get(self._send(("trigger", checkpoint_id, savepoint, final)),
                                  f"the trigger of checkpoint {checkpoint_id}", self._timeout_s)
        if record is not None:
            raise record.rebuild()
        return state

    def snapshot_state(self, checkpoint_id: int) -> dict:
        raise RuntimeError("on Ray the enumerator is snapshotted by trigger()")

    def handle_split_request(self, subtask: int) -> None:
        self._send(m.SplitRequest(subtask))

    def add_reader(self, subtask: int) -> None:
        self._send(m.ReaderRegistered(subtask))

    def handle_reader_event(self, subtask: int, event: dict) -> None:
        self._send(m.ReaderEvent(subtask, event))

    def notify_checkpoint_complete(self, checkpoint_id: int) -> None:
        self._send(m.CheckpointComplete(checkpoint_id))

    def close(self) -> None:
        """Stop the enumerator and close it in its actor (once; before the actors are
        killed: the executor's shutdown calls it, the control loop's end again)."""
        if self.task is None or self.task.ident is None or self._closed:
            return
        self._closed = True
        try:
            ray.get(self.actor.enumerator_stop.remote(), timeout=local.FAILED_JOIN_S * 2)
        except ray.exceptions.RayError as exc:  # lost, or stuck: its actor is killed next
            log.info("%s: not closed in its actor (%s)", self.name, type(exc).__name__)


class AttemptExecutor(LocalExecutor):
    """Runs one job once on a Ray cluster (``address``: default ``RAY_ADDRESS``, else a
    local one), from the process it is made in: the job master's actor
    (:class:`~runtime.executor.ray.master.JobMaster`), which makes one per attempt; tests may
    run it anywhere.  Every crossing message is pickled, as the contract says it may be.  With
    ``chain`` (the default; Flink's ``pipeline.operator-chaining``) source and sink subtask
    ``i`` share one actor; without, each has its own and batches cross between them.
    ``actors``: the subtasks' actors, made already by :func:`make_actors` (same ``chain``)."""

    def __init__(self, job: Job | None = None, metrics: PipelineMetrics | None = None,
                 address: str | None = None, chain: bool = True,
                 actors: list[tuple] | None = None):
        super().__init__(job, metrics, serialize=True)
        self.address = address
        self.chain = chain
        #: the subtasks' actors when made already (:func:`make_actors`, by the driver: their
        #: processes start while the job master's does), else made here
        self.premade = actors
        self.hosted: list[_Hosted] = []
        #: the enumerator's actor (polled as the subtasks' are)
        self.enumerator: _RemoteEnumerator | None = None
        self._enum_hosted: _Hosted | None = None
        self._poller: threading.Thread | None = None
        self._polling = threading.Event()
        #: set at the shutdown: the poller, waiting for nothing, stops at once
        self._poll_wake = threading.Event()

    def _create_enumerator(self, job: Job, context: Any, state: dict | None) -> Any:
        """A proxy: the enumerator is made in reader 0's actor with the subtasks (it needs
        the readers' actors, they need its), and started there."""
        self.enumerator = _RemoteEnumerator(f"enumerator of {operator_of(job.source)}",
                                            job.checkpoint_timeout_s)
        self._enum_state = state
        return self.enumerator

    def _trigger(self, coordinator: Any, enumerator: Any, savepoint: str | None = None,
                 final: bool = False, deadline: float | None = None):
        # The enumerator's actor snapshots it and sends the triggers itself, in order with
        # its assignments (local: snapshot here, then the triggers from here); the readers'
        # acks are served by this thread once the checkpoint is registered below.
        cid = coordinator.next_id
        state = enumerator.trigger(cid, savepoint, final)
        pending = coordinator.trigger(state, savepoint, final, deadline)
        assert pending.checkpoint_id == cid
        return pending

    def _create_subtasks(self, job: Job, sources: list, sinks: list,
                         reader_states: list[list[dict]], writer_states: list[dict | None]
                         ) -> list:
        cluster.connect(self.address)
        nodes = cluster.alive_nodes()
        p = job.parallelism
        made, self.premade = self.premade or make_actors(p, self.chain, nodes), None
        all_source_args: list[dict] = []
        for i in range(p):
            source_args = dict(source=sources[i], parallelism=p, restored=reader_states[i],
                               watermarks=job.watermarks, dead_letter=job.dead_letter)
            all_source_args.append(source_args)  # + the enumerator's actor, made below
            sink_args = dict(sink=sinks[i], context=self.writer_context(job, i),
                             state=writer_states[i], capacity=job.channel_capacity,
                             channel_bytes=job.channel_bytes)
            source_name = f"source-{i} ({operator_of(job.source)} reader)"
            sink_name = f"sink-{i} ({operator_of(job.sink)} writer)"
            if self.chain:
                actor, = made[i]
                control = _Control(actor)
                # started once, by the sink's start (the control loop starts sinks first)
                sink = _RemoteTask(sink_name, i, "sink", actor, control, _starter(
                    actor.start, source_args, sink_args))
                source = _RemoteTask(source_name, i, "source", actor, control, lambda: None)
                self.hosted.append(_Hosted(actor, [source, sink]))
            else:
                sink_actor, source_actor = made[i]
                sink = _RemoteTask(sink_name, i, "sink", sink_actor, _Control(sink_actor),
                                   _starter(sink_actor.start, None, sink_args))
                source = _RemoteTask(source_name, i, "source", source_actor,
                                     _Control(source_actor), _starter(
                                         source_actor.start, source_args, None, sink_actor))
                self.hosted += [_Hosted(sink_actor, [sink]), _Hosted(source_actor, [source])]
            self.sinks.append(sink)
            self.sources.append(source)
        # every actor up before any subtask starts (a worker process each: seconds on a busy
        # node), so that no subtask runs long before its partner is there; each says its node
        # and whether it sees the checkpoint storage (asked of the actors, not of a task per
        # node: a task starts one more worker process on every node)
        try:
            with cluster.visibility_marker(job.storage.root, len(nodes)) as marker:
                try:
                    answers = ray.get([h.actor.where.remote(marker) for h in self.hosted])
                except ray.exceptions.RayError as exc:  # a node lost a moment ago, still listed
                    raise TransientError(f"the subtasks' Ray actors could not be placed: "
                                         f"{type(exc).__name__}: {str(exc).splitlines()[0]}"
                                         ) from None
            self.nodes = [node for node, _ in answers]
            by_id = {n["NodeID"]: n for n in nodes}
            # (an actor made by the driver on a node since gone answered nothing: not here)
            cluster.refuse_blind(job.storage.root, [(by_id[node], sees) for node, sees
                                                    in answers if node in by_id], len(nodes))
        except BaseException:
            self._kill_actors()  # made, never started: the run ends before its shutdown
            raise
        # the enumerator, in the actor of reader 0 (started by the control loop, before the
        # subtasks, as the local executor starts its enumerator)
        e = self.enumerator
        e.actor = self.sources[0].actor
        e.args = (job.source, self._enum_state, p, [t.actor for t in self.sources])
        e.task = _RemoteTask(e.name, 0, "enumerator", e.actor, None, lambda: None)
        self._enum_hosted = _Hosted(e.actor, [e.task], poll="enumerator_poll")
        for t in self.sinks + self.sources:
            t.launch_all = self._launch_all
        for args in all_source_args:
            args["enumerator"] = e.actor
        self._polling.set()
        self._poller = threading.Thread(target=self._poll, name="ray-poller", daemon=True)
        self._poller.start()
        return []

    def _launch_all(self) -> None:
        for t in self.sinks + self.sources:
            t.launch()

    def _poll(self) -> None:
        """Bring what the actors report to the inbox, their counters to the metrics and the
        job's dead-letter queue; an actor lost fails the attempt (transient: a restart may find
        the node back, or another).  A bug here fails the job rather than leave it waiting."""
        try:
            self._poll_loop()
        except BaseException as exc:  # noqa: BLE001 - reported: the control loop fails the job
            log.exception("the Ray executor's poller failed")
            self.inbox.put(m.TaskFailed("the Ray executor's poller", exc))

    def _poll_loop(self) -> None:
        refs: dict[Any, _Hosted] = {}
        lost = False
        while self._polling.is_set():
            for h in self.hosted + ([self._enum_hosted] if self._enum_hosted else []):
                if h.is_alive() and h not in refs.values():
                    refs[getattr(h.actor, h.poll).remote(POLL_S)] = h
            if not refs:
                self._poll_wake.wait(POLL_S)
                continue
            ready, rest = ray.wait(list(refs), num_returns=1, timeout=POLL_S * 2)
            if ready and rest:  # every answer there, not one per round
                ready += ray.wait(rest, num_returns=len(rest), timeout=0)[0]
            for ref in ready:
                h = refs.pop(ref)
                try:
                    msgs, alive, slots, gauges, dead_letters = ray.get(ref)
                except ray.exceptions.RayError as exc:
                    h.ended()
                    if not lost and not h.cancelled():
                        lost = True
                        self.inbox.put(m.TaskFailed(h.name, TransientError(
                            f"{h.name}: its Ray actor was lost ({type(exc).__name__}: "
                            f"{str(exc).splitlines()[0] if str(exc) else ''})")))
                    continue
                for msg in msgs:
                    self.inbox.put(msg)
                subtask = next(iter(h.tasks.values())).subtask
                for name, value in slots.items():  # this subtask's slot of each list
                    getattr(self.metrics, name)[subtask] = (
                        defaultdict(int, value) if isinstance(value, dict) else value)
                if dead_letters > h.dead_letters:
                    self.job.dead_letter.counted(dead_letters - h.dead_letters)
                    h.dead_letters = dead_letters
                for name, (agg, values) in gauges.items():
                    for reporter, value in values.items():
                        self.metrics.set_gauge(reporter, name, value, agg)
                for side, running in alive.items():
                    if not running:
                        h.tasks[side].ended.set()

    def _shutdown(self, gates: list, failed: bool) -> None:
        tasks = self.sources + self.sinks
        if failed:
            for t in tasks + ([self.enumerator.task] if self.enumerator.task else []):
                t.cancelled.set()
            for h in self.hosted:
                try:
                    h.actor.cancel.remote()
                except Exception:  # noqa: BLE001 - an actor already lost
                    log.debug("%s: cancel not sent", h.name, exc_info=True)
        deadline = time.monotonic() + (local.FAILED_JOIN_S if failed else local.JOIN_S)
        for t in tasks:
            if t.ident is None:
                continue
            t.join(timeout=max(0.0, deadline - time.monotonic()))
            if t.is_alive():
                log.error("%s did not stop within %gs; its actor is killed", t.name,
                          local.FAILED_JOIN_S if failed else local.JOIN_S)
        self._polling.clear()
        self._poll_wake.set()
        if self._poller is not None:
            self._poller.join(timeout=5)
        self.enumerator.close()  # in its actor, before the actor goes
        self._kill_actors()

    def _kill_actors(self) -> None:
        for h in self.hosted:
            try:
                ray.kill(h.actor, no_restart=True)
            except Exception:  # noqa: BLE001 - gone already
                log.debug("%s: actor already gone", h.name, exc_info=True)


def make_actors(parallelism: int, chain: bool, nodes: list[dict]) -> list[tuple]:
    """The subtasks' actors of one attempt, made (Ray starts their processes meanwhile; the
    calls to them wait for that): per subtask pair ``i``, on node ``i`` mod ``len(nodes)`` (a
    batch never leaves its node), ``(actor,)`` chained, else ``(sink_actor, source_actor)``."""
    Actor = ray.remote(SubtaskActor)
    out: list[tuple] = []
    for i in range(parallelism):
        where = ray.util.scheduling_strategies.NodeAffinitySchedulingStrategy(
            nodes[i % len(nodes)]["NodeID"], soft=False)
        # no task events: a record per call (every poll, every push) sent to the GCS for
        # Ray's dashboard and state API, which the hub does not use
        opts = dict(num_cpus=0, max_concurrency=MAX_CONCURRENCY, max_restarts=0,
                    scheduling_strategy=where, enable_task_events=False)
        # reader 0's actor hosts the enumerator: a thread more per reader (their calls)
        more = dict(opts, max_concurrency=MAX_CONCURRENCY + parallelism) if i == 0 else opts
        if chain:
            out.append((Actor.options(**more).remote(f"subtask-{i}", i, parallelism),))
        else:
            out.append((Actor.options(**opts).remote(f"sink-{i}", i, parallelism),
                        Actor.options(**more).remote(f"source-{i}", i, parallelism)))
    return out


def _starter(method: Any, *args: Any):
    return lambda: method.remote(*args)
