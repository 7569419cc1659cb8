"""A source subtask: drives one SourceReader in its own thread.

Between two ``poll_next`` calls it serves the coordinator's control messages: new splits, no
more splits, and checkpoint triggers.  On a trigger it snapshots the reader's splits, puts the
barrier downstream right behind the data already emitted, and acknowledges with the state:
that order is what makes the snapshot consistent with the data each sink has seen.
"""
from __future__ import annotations

import logging
import pickle
import queue
import threading
from collections.abc import Callable
from typing import Any

from runtime.batch import ChangeBatch
from runtime.channel import ChannelClosed, InputGate
from runtime.deadletter import DeadLetterQueue
from runtime.elements import END_OF_INPUT, MAX_WATERMARK, Barrier, Watermark
from runtime.executor import messages as m
from runtime.executor.failure import operator_of
from runtime.executor.messages import dropped_after_cancel
from runtime.metrics import PipelineMetrics
from runtime.schema import SchemaChange
from runtime.source import InputStatus, ReaderContext, ReaderOutput, Source, Split
from runtime.watermark import IDLE, SplitWatermarks, WatermarkStrategy

log = logging.getLogger("hub.runtime")


class _Context(ReaderContext):
    def __init__(self, subtask: int, parallelism: int, send: Callable[[Any], None],
                 dead_letter: DeadLetterQueue, metrics: PipelineMetrics):
        self.subtask = subtask
        self.parallelism = parallelism
        self.dead_letter = dead_letter
        self._send = send
        self._metrics = metrics

    def set_gauge(self, name: str, value: float, agg: str = "sum") -> None:
        self._metrics.set_gauge(f"reader-{self.subtask}", name, value, agg)

    def send_split_request(self) -> None:
        self._send(m.SplitRequest(self.subtask))

    def send_event_to_enumerator(self, event: dict[str, Any]) -> None:
        self._send(m.ReaderEvent(self.subtask, event))


class _Output(ReaderOutput):
    """Routes what the reader emits to the downstream channel (forward partitioning)."""

    def __init__(self, task: SourceTask):
        self._task = task
        self._metrics = task.metrics
        self._subtask = task.subtask

    def collect(self, batch: ChangeBatch, split_id: str) -> None:
        if not len(batch):
            return
        max_ts = batch.max_ts()
        self._task.watermarks.on_batch(split_id, max_ts)
        self._metrics.record_in(self._subtask, batch.schema.table, batch.ops, max_ts)
        self._task.emit(batch)

    def collect_schema_change(self, change: SchemaChange, split_id: str) -> None:
        self._metrics.schema_changes[self._subtask] += 1
        self._task.emit(change)

    def split_finished(self, split_id: str) -> None:
        self._task.watermarks.split_finished(split_id)


class SourceTask(threading.Thread):
    """Subtask ``subtask`` of the source: reader + watermarks + barrier injection."""

    def __init__(self, source: Source, subtask: int, parallelism: int, restored: list[dict],
                 gate: InputGate, channel: int, to_coordinator: queue.Queue,
                 strategy: WatermarkStrategy, metrics: PipelineMetrics,
                 dead_letter: DeadLetterQueue, serialize: bool = False):
        super().__init__(name=f"source-{subtask}", daemon=True)
        self.source = source
        self.subtask = subtask
        self.parallelism = parallelism
        self.restored = restored
        self.gate, self.channel = gate, channel
        self.to_coordinator = to_coordinator
        self.control: queue.Queue = queue.Queue()
        self.watermarks = SplitWatermarks(strategy)
        self.metrics = metrics
        self.dead_letter = dead_letter
        self.cancelled = threading.Event()
        #: elements go downstream pickled and unpickled, as between processes (tests)
        self.serialize = serialize

    def emit(self, element: Any) -> None:
        if self.serialize:
            element = pickle.loads(pickle.dumps(element))
        self.gate.put(self.channel, element)

    def _splits(self, dicts: list[dict]) -> list[Split]:
        for d in dicts:
            self.watermarks.add_split(d["split_id"])
        return [self.source.split_type.from_dict(d) for d in dicts]

    def run(self) -> None:
        reader = None
        try:
            ctx = _Context(self.subtask, self.parallelism, self.to_coordinator.put, self.dead_letter,
                           self.metrics)
            reader = self.source.create_reader(ctx)
            if self.restored:
                reader.add_splits(self._splits(self.restored))
            reader.start()
            self.to_coordinator.put(m.ReaderRegistered(self.subtask))
            self._loop(reader, _Output(self))
        except ChannelClosed:
            pass  # the job is being cancelled: the failure that cancelled it is reported
        except BaseException as exc:  # noqa: BLE001 - reported to the coordinator, which stops the job
            where = f"{self.name} ({operator_of(self.source)} reader)"
            if not self.cancelled.is_set():
                self.to_coordinator.put(m.TaskFailed(where, exc))
            else:
                dropped_after_cancel(log, where, exc)
        finally:
            if reader is not None:
                try:
                    reader.close()
                except Exception:  # noqa: BLE001
                    log.exception("source-%d: error while closing the reader (ignored)", self.subtask)

    def _loop(self, reader: Any, output: _Output) -> None:
        finished = False
        while not self.cancelled.is_set():
            # Serve control messages first: a pending trigger must not wait behind data.
            while True:
                try:
                    msg = self.control.get(timeout=0.1) if finished else self.control.get_nowait()
                except queue.Empty:
                    break
                if self._handle(msg, reader):
                    return
            if finished:
                continue
            status = reader.poll_next(output)
            wm = self.watermarks.advance()
            if wm is IDLE:
                self.emit(Watermark(0, idle=True))
            elif wm is not None:
                self.emit(Watermark(wm))
            if status is InputStatus.END_OF_INPUT:
                finished = True
                self.emit(Watermark(MAX_WATERMARK))
                self.to_coordinator.put(m.SourceFinished(self.subtask))
            elif status is InputStatus.NOTHING_AVAILABLE:
                reader.wait_available(0.05)

    def _handle(self, msg: Any, reader: Any) -> bool:
        """Serve one control message; True when the subtask must end."""
        if isinstance(msg, m.AddSplits):
            reader.add_splits(self._splits(msg.splits))
        elif isinstance(msg, m.NoMoreSplits):
            reader.notify_no_more_splits()
        elif isinstance(msg, m.SourceEvent):
            reader.handle_source_event(msg.event)
        elif isinstance(msg, m.TriggerCheckpoint):
            splits = [s.to_dict() for s in reader.snapshot_state(msg.checkpoint_id)]
            self.emit(Barrier(msg.checkpoint_id, msg.savepoint, msg.final))
            self.to_coordinator.put(m.SourceAck(self.subtask, msg.checkpoint_id, splits))
            if msg.final:
                self.emit(END_OF_INPUT)
                return True
        elif isinstance(msg, m.CheckpointComplete):
            reader.notify_checkpoint_complete(msg.checkpoint_id)
        elif isinstance(msg, m.Cancel):
            return True
        return False
