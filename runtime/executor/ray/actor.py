"""The Ray actor that hosts one subtask: a source reader or a sink writer.

The actor runs the local executor's own subtask (:class:`~runtime.executor.source_task.SourceTask`
or :class:`~runtime.executor.sink_task.SinkTask`) in a thread of its process, unchanged; only
its two edges are Ray's: what it reports goes to an outbox the driver polls
(:meth:`SubtaskActor.poll`), and a source's elements go to its sink's actor as
``push`` calls (large batches travel through Ray's object store; their Arrow buffers are
pickled out of band).  The actor is threaded (calls run concurrently with the subtask), so
calls carry their sender's sequence number and are delivered in that order
(:class:`InOrder`): Ray keeps no order between the calls of a threaded actor.
"""
from __future__ import annotations

import collections
import logging
import queue
import threading
from typing import Any

from runtime.executor.ray._ray import ray
from runtime.channel import ChannelClosed, InputGate
from runtime.executor import messages as m
from runtime.executor.sink_task import SinkTask
from runtime.executor.source_task import SourceTask
from runtime.metrics import PipelineMetrics

log = logging.getLogger("hub.runtime")

#: ``push`` calls a source has in flight to its sink before it waits (backpressure: with the
#: sink's bounded gate, what a subtask pair holds stays bounded).
IN_FLIGHT = 4
#: Threads of a subtask actor: the in-flight pushes, control calls and the driver's poll.
MAX_CONCURRENCY = IN_FLIGHT + 8


#: The per-subtask lists of :class:`PipelineMetrics` a source (sink) subtask writes: an actor
#: keeps its own, the driver copies them into the job's metrics at each poll.
SOURCE_SLOTS = ("rows_in", "ops_in", "last_event_ts_ms", "last_event_at", "schema_changes")
SINK_SLOTS = ("rows_out", "ops_out")


class InOrder:
    """Delivers items numbered 0, 1, 2... by their sender in that order, whatever order the
    calls carrying them run in.  ``deliver`` may block (a full gate): later items wait."""

    def __init__(self, deliver: Any):
        self._deliver = deliver
        self._next = 0
        self._cond = threading.Condition()
        self.closed = False

    def put(self, seq: int, item: Any) -> None:
        with self._cond:
            while seq != self._next:
                if self.closed:
                    raise ChannelClosed()
                self._cond.wait(0.5)
            try:
                self._deliver(item)
            finally:
                self._next += 1
                self._cond.notify_all()

    def close(self) -> None:
        with self._cond:
            self.closed = True
            self._cond.notify_all()


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


class SubtaskActor:
    """One subtask in its own process.  Made with ``ray.remote(SubtaskActor).options(...)``
    by :class:`~runtime.executor.ray.executor.RayExecutor`; the plugin (source or sink) comes
    pickled, as the executor contract says it may."""

    def __init__(self, name: str, subtask: int, parallelism: int):
        self.name = name
        self.subtask = subtask
        self.metrics = PipelineMetrics(parallelism)
        self.outbox: queue.Queue = queue.Queue()
        self.task: SourceTask | SinkTask | None = None
        self.gate: InputGate | None = None
        #: calls may come before the start call ran (a threaded actor): they wait for it
        self.started = threading.Event()
        self.control_in = InOrder(self._control)
        self.data_in = InOrder(self._push)

    # -- start ----------------------------------------------------------------------------------
    def start_source(self, source: Any, parallelism: int, restored: list[dict], sink_actor: Any,
                     watermarks: Any, dead_letter: Any) -> None:
        self.task = SourceTask(source, self.subtask, parallelism, restored, RemoteGate(sink_actor),
                               0, self.outbox, watermarks, self.metrics, dead_letter)
        self.task.start()
        self.started.set()

    def start_sink(self, sink: Any, context: Any, state: dict | None, capacity: int,
                   channel_bytes: int | None) -> None:
        self.gate = InputGate(1, capacity, channel_bytes)
        self.task = SinkTask(sink, context, state, self.gate, self.outbox, self.metrics)
        self.task.start()
        self.started.set()

    # -- calls from the source's actor and the driver --------------------------------------------
    def push(self, seq: int, element: Any) -> None:
        """An element from the source subtask (sink actors only); returns once the gate took it."""
        self.data_in.put(seq, element)

    def control(self, seq: int, msg: Any) -> None:
        """A control message from the driver, the ``seq``-th it sends this subtask."""
        self.control_in.put(seq, msg)

    def _control(self, msg: Any) -> None:
        self._wait_started()
        self.task.control.put(msg)

    def _push(self, element: Any) -> None:
        self._wait_started()
        self.gate.put(0, element)

    def _wait_started(self) -> None:
        while not self.started.wait(0.5):
            if self.control_in.closed:
                raise ChannelClosed()

    def cancel(self) -> None:
        """The job failed: stop now (what the local executor's shutdown does to a thread)."""
        self.control_in.close()
        self.data_in.close()
        if self.task is None:
            return
        self.task.cancelled.set()
        if isinstance(self.task, SourceTask):
            self.task.control.put(m.Cancel())
        if self.gate is not None:
            self.gate.close()

    def poll(self, timeout_s: float) -> tuple[list[Any], bool, dict[str, Any], dict]:
        """What the subtask reported (waiting up to ``timeout_s`` for the first message),
        whether it still runs, its metric slots (:data:`SOURCE_SLOTS` or :data:`SINK_SLOTS`:
        name -> its value of that per-subtask list) and the gauges."""
        out: list[Any] = []
        try:
            out.append(self.outbox.get(timeout=timeout_s))
            while True:
                out.append(self.outbox.get_nowait())
        except queue.Empty:
            pass
        alive = self.task is not None and self.task.is_alive()
        if not alive:  # what it said last, between the check and its end
            while not self.outbox.empty():
                out.append(self.outbox.get_nowait())
        slots = SOURCE_SLOTS if isinstance(self.task, SourceTask) else SINK_SLOTS
        mine = {name: getattr(self.metrics, name)[self.subtask] for name in slots}
        return out, alive, mine, dict(self.metrics.gauges)

    def node(self) -> str:
        return ray.get_runtime_context().get_node_id()

    def stacks(self) -> str:
        """Every thread's stack in this actor (for diagnosing a subtask that hangs)."""
        import sys
        import traceback
        return "\n".join(f"--- {tid}\n" + "".join(traceback.format_stack(frame))
                         for tid, frame in sys._current_frames().items())
