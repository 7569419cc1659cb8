"""The Ray actor that hosts subtask ``i``: its source reader and sink writer, chained.

The actor runs the local executor's own subtasks (:class:`~runtime.executor.source_task.SourceTask`
and :class:`~runtime.executor.sink_task.SinkTask`) in threads of its process, unchanged.  As
Flink chains operators of the same parallelism joined by forward partitioning (the only
partitioning here: source ``i`` feeds sink ``i``), the two share one process and the local
executor's bounded in-process gate: a batch is never pickled nor copied, only control crosses
processes.  Only the edges to the job's control (the job master's actor,
:mod:`runtime.executor.ray.master`; "driver" in the calls) and the enumerator are Ray's: what
the subtasks report goes to an outbox the job master polls (:meth:`SubtaskActor.poll`), a reader's split
requests and events to the enumerator's actor (:mod:`runtime.executor.ray.enumerator`).  With chaining off, each subtask has an actor and
a source's elements go to its sink's actor as ``push`` calls (large batches through Ray's
object store; their Arrow buffers pickled out of band).  The actor is threaded (calls run
concurrently with the subtasks), so calls carry their sender's sequence number and are
delivered in that order (:class:`InOrder`): Ray keeps no order between the calls of a threaded
actor.
"""
from __future__ import annotations

import collections
import logging
import os
import queue
import threading
from typing import Any

from runtime.executor.ray._ray import ray
from runtime.executor.ray.enumerator import EnumeratorHost
from runtime.executor.ray.ordering import InOrder
from runtime.channel import ChannelClosed, InputGate
from runtime.executor import messages as m
from runtime.executor.sink_task import SinkTask
from runtime.executor.source_task import SourceTask
from runtime.metrics import PipelineMetrics

log = logging.getLogger("hub.runtime")

#: ``push`` calls a source has in flight to its sink before it waits (backpressure: with the
#: sink's bounded gate, what a subtask pair holds stays bounded).
IN_FLIGHT = 4
#: Threads of a subtask actor: the in-flight pushes, control calls and the driver's poll
#: (the actor hosting the enumerator: + one per reader, whose calls may wait their turn).
MAX_CONCURRENCY = IN_FLIGHT + 8


#: The per-subtask lists of :class:`PipelineMetrics` a source (sink) subtask writes: an actor
#: keeps its own, the driver copies them into the job's metrics at each poll.
SOURCE_SLOTS = ("rows_in", "ops_in", "last_event_ts_ms", "last_event_at", "schema_changes")
SINK_SLOTS = ("rows_out", "ops_out")


#: In an actor's outbox: one of its subtasks ended (never sent to the driver).
_ENDED = object()


class RemoteGate:
    """A source subtask's output: each element a ``push`` call on its sink's actor, at most
    :data:`IN_FLIGHT` unanswered (the answer comes once the sink's gate took it)."""

    def __init__(self, sink_actor: Any):
        self._sink = sink_actor
        self._seq = 0
        self._in_flight: collections.deque = collections.deque()

    def put(self, channel: int, element: Any) -> None:
        self._in_flight.append(self._sink.push.remote(self._seq, element))
        self._seq += 1
        while len(self._in_flight) > IN_FLIGHT:
            self._wait(self._in_flight.popleft())

    @staticmethod
    def _wait(ref: Any) -> None:
        try:
            ray.get(ref)
        except (ray.exceptions.RayActorError, ray.exceptions.RayTaskError) as exc:
            # the sink failed or was cancelled: the driver reports the job's error from there
            raise ChannelClosed() from exc


class _ToCoordinator:
    """A source subtask's messages: to the enumerator's actor (split requests, registration,
    events: numbered, delivered in order there; ``here``: the enumerator hosted by this very
    actor, called directly), the rest to the outbox the driver polls."""

    def __init__(self, subtask: int, outbox: queue.Queue, enumerator: Any, here: Any = None):
        self._subtask, self._outbox, self._enumerator = subtask, outbox, enumerator
        self._here = here
        self._seq = 0
        self._lock = threading.Lock()

    def put(self, msg: Any) -> None:
        if isinstance(msg, (m.SplitRequest, m.ReaderRegistered, m.ReaderEvent)):
            with self._lock:  # the number and the call in one order
                if self._here is not None:
                    self._here.handle(self._subtask, self._seq, msg)
                else:
                    self._enumerator.handle.remote(self._subtask, self._seq, msg)
                self._seq += 1
        else:
            self._outbox.put(msg)


class SubtaskActor:
    """One process of a job on Ray: source subtask ``i`` and sink subtask ``i`` chained in
    it (the default: joined by the local executor's in-process gate, so that a batch never
    leaves the process), or one of them alone (``pipeline.operator-chaining`` off: the source's
    elements reach its sink's actor as ``push`` calls).  Made with
    ``ray.remote(SubtaskActor).options(...)`` by
    :class:`~runtime.executor.ray.attempt.AttemptExecutor`; the plugins (source, sink) come
    pickled, as the executor contract says they may."""

    def __init__(self, name: str, subtask: int, parallelism: int):
        self.name = name
        self.subtask = subtask
        self.metrics = PipelineMetrics(parallelism)
        self.outbox: queue.Queue = queue.Queue()
        #: the subtasks hosted here: "source", "sink" or both
        self.tasks: dict[str, SourceTask | SinkTask] = {}
        self.gate: InputGate | None = None
        #: calls may come before the start call ran (a threaded actor): they wait for it
        self.started = threading.Event()
        #: the control calls of each sender ("driver", "enumerator"), each stream in order
        self.control_in: dict[str, InOrder] = {}
        self._control_lock = threading.Lock()
        self.closed = False
        self.data_in = InOrder(self._push)
        #: this process's copies of the job's dead-letter queue (the reader's, the writer's):
        #: their counts go back to the driver with each poll
        self.dead_letters: list[Any] = []
        #: the job's enumerator, when hosted here (:meth:`enumerator_create`)
        self.enumerator: Any = None

    # -- start ----------------------------------------------------------------------------------
    def start(self, source: dict | None, sink: dict | None, sink_actor: Any = None) -> None:
        """Start the subtasks given: ``source`` the arguments of the source subtask
        (``source``, ``parallelism``, ``restored``, ``watermarks``, ``dead_letter``,
        ``enumerator``: the enumerator's actor, which its requests go to), ``sink``
        those of the sink subtask (``sink``, ``context``, ``state``, ``capacity``,
        ``channel_bytes``).  With both, the source feeds the sink through a local gate;
        a source alone pushes to ``sink_actor``."""
        if sink is not None:
            self.gate = InputGate(1, sink["capacity"], sink["channel_bytes"])
            self.dead_letters.append(sink["context"].dead_letter)
            self.tasks["sink"] = SinkTask(sink["sink"], sink["context"], sink["state"],
                                          self.gate, self.outbox, self.metrics)
        if source is not None:
            out = self.gate if sink is not None else RemoteGate(sink_actor)
            self.dead_letters.append(source["dead_letter"])
            self.tasks["source"] = SourceTask(
                source["source"], self.subtask, source["parallelism"], source["restored"], out,
                0, _ToCoordinator(self.subtask, self.outbox, source["enumerator"],
                                  self.enumerator),
                source["watermarks"], self.metrics, source["dead_letter"])
        for task in self.tasks.values():  # the sink first: it takes what the source emits
            task.start()
            # its end wakes the driver's poll at once (the poll waits for the outbox)
            threading.Thread(target=self._tell_end, args=(task,), daemon=True,
                             name=f"{task.name}-end").start()
        self.started.set()

    def _tell_end(self, task: threading.Thread) -> None:
        task.join()
        self.outbox.put(_ENDED)

    # -- calls from the source's actor and the driver --------------------------------------------
    def push(self, seq: int, element: Any) -> None:
        """An element from the source subtask (a sink alone); returns once the gate took it."""
        self.data_in.put(seq, element)

    def control(self, sender: str, seq: int, to: str, msg: Any) -> None:
        """A control message for subtask ``to`` ("source", "sink"), the ``seq``-th that
        ``sender`` ("driver", "enumerator") sends this actor."""
        with self._control_lock:
            if self.closed:  # cancelled: nothing is served any more (said by the cancel)
                return
            order = self.control_in.setdefault(sender, InOrder(self._control))
        order.put(seq, (to, msg))

    def _control(self, item: tuple[str, Any]) -> None:
        self._wait_started()
        to, msg = item
        self.tasks[to].control.put(msg)

    def _push(self, element: Any) -> None:
        self._wait_started()
        self.gate.put(0, element)

    def _wait_started(self) -> None:
        while not self.started.wait(0.5):
            if self.closed:
                raise ChannelClosed()

    def cancel(self) -> None:
        """The job failed: stop now (what the local executor's shutdown does to its threads)."""
        with self._control_lock:
            self.closed = True
            for order in self.control_in.values():
                order.close()
        self.data_in.close()
        for task in self.tasks.values():
            task.cancelled.set()
        if "source" in self.tasks:
            self.tasks["source"].control.put(m.Cancel())
        if self.gate is not None:
            self.gate.close()

    def poll(self, timeout_s: float) -> tuple[list[Any], dict[str, bool], dict[str, Any], dict,
                                              int]:
        """What the subtasks reported (waiting up to ``timeout_s`` for the first message),
        which still run ("source", "sink" -> alive), their metric slots (:data:`SOURCE_SLOTS`,
        :data:`SINK_SLOTS`: name -> this subtask's value of that per-subtask list), the gauges
        and how many records they sent to the dead letters since they started."""
        out: list[Any] = []
        try:
            out.append(self.outbox.get(timeout=timeout_s))
            while True:
                out.append(self.outbox.get_nowait())
        except queue.Empty:
            pass
        alive = {side: task.is_alive() for side, task in self.tasks.items()}
        if not all(alive.values()):  # what it said last, between the check and its end
            while not self.outbox.empty():
                out.append(self.outbox.get_nowait())
        out = [msg for msg in out if msg is not _ENDED]
        slots = (SOURCE_SLOTS if "source" in self.tasks else ()) + (
            SINK_SLOTS if "sink" in self.tasks else ())
        mine = {name: getattr(self.metrics, name)[self.subtask] for name in slots}
        return (out, alive, mine, dict(self.metrics.gauges),
                sum(d.count for d in self.dead_letters))

    # -- the job's enumerator, when this actor hosts it (subtask 0) ----------------------------
    def enumerator_start(self, source: Any, state: dict | None, parallelism: int,
                         readers: list[Any]) -> Any:
        """Host the enumerator of ``source`` (:class:`~runtime.executor.ray.enumerator.
        EnumeratorHost`) for the readers of ``readers`` (this actor is one of them) and start
        it; the record of the error that failed it, or None."""

        self.enumerator = EnumeratorHost(source, state, parallelism, readers,
                                         here=(self.subtask, self))
        return self.enumerator.start()

    def handle(self, sender: Any, seq: int, msg: Any) -> Any:
        """A message for the enumerator hosted here (:meth:`EnumeratorHost.handle
        <runtime.executor.ray.enumerator.EnumeratorHost.handle>`)."""
        return self.enumerator.handle(sender, seq, msg)

    def enumerator_poll(self, timeout_s: float) -> tuple:
        return self.enumerator.poll(timeout_s)

    def enumerator_stop(self) -> None:
        self.enumerator.stop()

    def where(self, marker: str | None) -> tuple[str, bool | None]:
        """This actor's node id, and whether it sees the file ``marker`` (None: nothing to
        look for): the checkpoint storage check, asked of the processes that use it."""
        return (ray.get_runtime_context().get_node_id(),
                os.path.exists(marker) if marker else None)

    def stacks(self) -> str:
        """Every thread's stack in this actor (for diagnosing a subtask that hangs)."""
        import sys
        import traceback
        return "\n".join(f"--- {tid}\n" + "".join(traceback.format_stack(frame))
                         for tid, frame in sys._current_frames().items())
