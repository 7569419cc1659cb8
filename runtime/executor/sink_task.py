"""A sink subtask: drives one SinkWriter in its own thread.

It aligns checkpoint barriers over its inputs (an input whose barrier arrived is held back
until the barrier arrived on all), then prepares the writer's commit and acknowledges with the
committables.  Its watermark is the minimum over its inputs.  Its control queue brings
:class:`~runtime.executor.messages.CheckpointStored` once a checkpoint is stored and
:class:`~runtime.executor.messages.CheckpointComplete` once the committer is done with it:
handed to the writer (:meth:`SinkWriter.notify_checkpoint_stored`,
:meth:`SinkWriter.notify_checkpoint_complete`) between elements, or while the writer waits for
them (``WriterContext.notifications``).  At the end of its input the subtask stays until the
final checkpoint's commit is done, so that a writer that commits its own transactions (on the
stored notification) still can, and only then closes the writer.
"""
from __future__ import annotations

import dataclasses
import functools
import logging
import queue
import threading
import time
from typing import Any

from runtime.batch import ChangeBatch
from runtime.channel import ChannelClosed, InputGate
from runtime.elements import END_OF_INPUT, Barrier, Watermark
from runtime.executor import messages as m
from runtime.executor.failure import operator_of
from runtime.executor.messages import dropped_after_cancel
from runtime.faults import delay_point
from runtime.metrics import PipelineMetrics
from runtime.schema import SchemaChange
from runtime.sink import Notifications, Sink, SinkWriter, WriterContext
from runtime.watermark import IDLE, WatermarkValue, merge_min

log = logging.getLogger("hub.runtime")


class SinkTask(threading.Thread):
    def __init__(self, sink: Sink, context: WriterContext, state: dict | None, gate: InputGate,
                 to_coordinator: queue.Queue, metrics: PipelineMetrics):
        super().__init__(name=f"sink-{context.subtask}", daemon=True)
        self.sink = sink
        self.context = context
        self.state = state
        self.gate = gate
        self.to_coordinator = to_coordinator
        self.metrics = metrics
        self.cancelled = threading.Event()
        self.watermark: int | None = None
        self.idle = False
        #: from the coordinator: CheckpointStored, CheckpointComplete
        self.control: queue.Queue = queue.Queue()
        self.writer: SinkWriter | None = None
        #: the latest checkpoints told to the writer as stored and as complete
        self.stored = 0
        self.notified = 0

    def run(self) -> None:
        writer = None
        try:
            context = dataclasses.replace(
                self.context, notifications=_Notifications(self),
                record_out=functools.partial(self.metrics.record_out, self.context.subtask))
            writer = self.writer = self.sink.create_writer(context, self.state)
            self._loop(writer)
        except ChannelClosed:
            pass  # the job is being cancelled: the failure that cancelled it is reported
        except BaseException as exc:  # noqa: BLE001 - reported to the coordinator
            where = f"{self.name} ({operator_of(self.sink)} writer)"
            if not self.cancelled.is_set():
                self.to_coordinator.put(m.TaskFailed(where, exc))
            else:
                dropped_after_cancel(log, where, exc)
        finally:
            if writer is not None:
                try:
                    writer.close()
                except Exception:  # noqa: BLE001
                    log.exception("%s: error while closing the writer (ignored)", self.name)

    def _loop(self, writer: Any) -> None:
        n = self.gate.num_inputs
        # a writer with operators in front counts what its sink's writer receives itself
        record_out = None if getattr(writer, "counts_output", False) else self.metrics.record_out
        input_wms: list[WatermarkValue] = [None] * n
        ended: set[int] = set()
        arrived: dict[int, set[int]] = {}
        subtask = self.context.subtask
        final = 0  # the final checkpoint, once acknowledged
        while True:
            if not self.control.empty():
                self.serve_control(0)
            got = self.gate.get(timeout=0.2)
            if got is None:
                if self.cancelled.is_set():
                    return
                continue
            ch, el = got
            if type(el) is ChangeBatch:
                writer.write(el)
                if record_out is not None:
                    record_out(subtask, el.schema.table, el.ops)
            elif type(el) is Watermark:
                input_wms[ch] = IDLE if el.idle else el.ts_ms
                wm = merge_min(input_wms)
                self.idle = wm is IDLE
                if isinstance(wm, int) and (self.watermark is None or wm > self.watermark):
                    self.watermark = wm
                    writer.on_watermark(wm)
            elif type(el) is Barrier:
                seen = arrived.setdefault(el.checkpoint_id, set())
                seen.add(ch)
                self.gate.block(ch)
                if len(seen | ended) == n:
                    del arrived[el.checkpoint_id]
                    committables = writer.prepare_commit(el.checkpoint_id)
                    state = writer.snapshot_state(el.checkpoint_id)
                    delay_point("sink-ack", el.checkpoint_id)
                    self.to_coordinator.put(m.SinkAck(
                        subtask, el.checkpoint_id, committables, state,
                        None if self.idle else self.watermark, self.idle))
                    if el.final:
                        final = el.checkpoint_id
                    self.gate.unblock_all()
                    for c in ended:
                        self.gate.block(c)
            elif el is END_OF_INPUT:
                ended.add(ch)
                self.gate.block(ch)
                if len(ended) == n:
                    self._await_final(final)
                    return
            elif isinstance(el, SchemaChange):
                writer.write_schema_change(el)
            else:
                raise TypeError(f"{self.name}: unexpected element {el!r}")

    def _await_final(self, final: int) -> None:
        """Serve notifications until the committer is done with the final checkpoint (the
        job ends right after) or the job is cancelled (it failed, or stopped without it)."""
        while final and self.notified < final and not self.cancelled.is_set():
            self.serve_control(0.2)

    def serve_control(self, timeout_s: float) -> bool:
        """Serve the control messages queued, waiting up to ``timeout_s`` for the first; True
        when a notification reached the writer."""
        delivered = False
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                left = deadline - time.monotonic()
                msg = self.control.get(timeout=left) if left > 0 and not delivered \
                    else self.control.get_nowait()
            except queue.Empty:
                return delivered
            if isinstance(msg, m.CheckpointStored):
                if msg.checkpoint_id > self.stored and self.writer is not None:
                    self.stored = msg.checkpoint_id
                    self.writer.notify_checkpoint_stored(msg.checkpoint_id)
                    delivered = True
            elif isinstance(msg, m.CheckpointComplete):
                if msg.checkpoint_id > self.notified and self.writer is not None:
                    self.notified = msg.checkpoint_id
                    self.writer.notify_checkpoint_complete(msg.checkpoint_id)
                    delivered = True
            else:
                log.warning("%s: unexpected control message %r (ignored)", self.name, msg)


class _Notifications(Notifications):
    """A writer waits here, in its subtask's thread, which serves the control queue."""

    def __init__(self, task: SinkTask):
        self._task = task

    def wait(self, timeout_s: float) -> bool:
        deadline = time.monotonic() + timeout_s
        while not self._task.cancelled.is_set():
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            if self._task.serve_control(min(left, 0.2)):
                return True
        return False
