"""The split enumerator of a job on Ray, in an actor: hosted by the actor of subtask 0
(:class:`~runtime.executor.ray.actor.SubtaskActor`, its ``enumerator_*`` and ``handle``
calls).  An actor of its own was measured: one more worker process per run, ~1 CPU-s and
~0.5-0.8 s of a run's start on a two-core machine, for nothing a split needs.

The readers' split requests, registrations and events go straight to that actor
(:meth:`EnumeratorHost.handle`, from each reader's actor) and its assignments straight to the
readers' actors (their ``control`` calls): a split does not wait for the driver's poll and
control loop on its way.  The job master (:mod:`runtime.executor.ray.master`) keeps the
checkpoint coordinator; what it asks of the enumerator (a checkpoint's trigger, a checkpoint completed) comes in order through the same
:meth:`EnumeratorHost.handle` (sender "driver").

One thread (the enumerator's control thread, as the local executor's) runs every enumerator
method, one at a time: the calls only queue what they bring.  A checkpoint's
trigger is served there: the enumerator's state is snapshotted, then the trigger goes to every
reader in the same ordered stream as the assignments, so that a split assigned after the
snapshot reaches its reader after the trigger (in exactly one of both states, as with the
local executor).
"""
from __future__ import annotations

import logging
import queue
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from runtime.executor import messages as m
from runtime.executor.failure import ErrorRecord, operator_of
from runtime.executor.local import QueuedEnumeratorContext, serve_enumerator
from runtime.executor.ray.ordering import InOrder
from runtime.metrics import PipelineMetrics

log = logging.getLogger("hub.runtime")

#: How long the control thread waits for a message before it looks at its timers.
TICK_S = 0.05


class _Trigger:
    """From the driver: snapshot the enumerator for checkpoint ``checkpoint_id`` and send its
    trigger to every reader; the state goes back through ``reply``."""

    def __init__(self, checkpoint_id: int, savepoint: str | None, final: bool):
        self.checkpoint_id, self.savepoint, self.final = checkpoint_id, savepoint, final
        self.reply: Future = Future()


class _Readers:
    """The readers' actors, each addressed with this actor's own numbered control calls
    (their actor delivers the calls of each sender in the order sent); the reader hosted by
    this very actor (``here``: its index and the actor's instance) is called directly, not
    through Ray (a split's round trip without the two Ray calls: the local executor's)."""

    def __init__(self, actors: list[Any], here: tuple[int, Any] | None = None):
        self._actors = actors
        self._seq = [0] * len(actors)
        self._here = here

    def __len__(self) -> int:
        return len(self._actors)

    def send(self, subtask: int, msg: Any) -> None:
        if self._here is not None and self._here[0] == subtask:
            self._here[1].control("enumerator", self._seq[subtask], "source", msg)
        else:
            self._actors[subtask].control.remote("enumerator", self._seq[subtask], "source",
                                                 msg)
        self._seq[subtask] += 1


class EnumeratorHost:
    """The enumerator of ``source`` (restored from ``state``) for ``parallelism`` readers
    hosted by ``readers`` (actor ``i`` hosts reader ``i``; ``here``: the index of the reader
    hosted with it and its actor's instance), in a threaded actor: the calls of each sender
    are put back in order (:class:`~runtime.executor.ray.ordering.InOrder`)."""

    def __init__(self, source: Any, state: dict | None, parallelism: int, readers: list[Any],
                 here: tuple[int, Any] | None = None):
        self.name = f"enumerator of {operator_of(source)}"
        self.metrics = PipelineMetrics(parallelism)
        self.readers = _Readers(readers, here)
        self.registered: set[int] = set()
        self.inbox: queue.Queue = queue.Queue()
        #: what the driver's poll takes: a failure of the enumerator
        self.outbox: queue.Queue = queue.Queue()
        self.enumerator_io = ThreadPoolExecutor(1, thread_name_prefix="enumerator-io")
        self.context = QueuedEnumeratorContext(self, parallelism)
        self._source, self._state = source, state
        self.enumerator: Any = None
        #: the calls of each sender (a reader's subtask index, or "driver"), in order
        self._in: dict[Any, InOrder] = {}
        self._in_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- calls ----------------------------------------------------------------------------------
    def start(self) -> ErrorRecord | None:
        """Start the enumerator, then its control thread; an error (its record) is returned,
        for the driver to raise as the local executor would."""
        try:
            self.enumerator = self._source.create_enumerator(self.context, self._state)
            self.enumerator.start()
        except BaseException as exc:  # noqa: BLE001 - the driver raises it
            return ErrorRecord.of(exc, self.name)
        self._thread = threading.Thread(target=self._run, name="enumerator", daemon=True)
        self._thread.start()
        return None

    def handle(self, sender: Any, seq: int, msg: Any) -> None:
        """A message for the enumerator: from reader ``sender`` (split request, registration,
        event) or from the driver (``sender`` "driver": a trigger, a checkpoint completed).
        A trigger is answered when the triggers went out: (the enumerator's state, None), or
        (None, the record of the error that failed it)."""
        with self._in_lock:
            order = self._in.setdefault(sender, InOrder(self.inbox.put))
        if isinstance(msg, tuple) and msg[0] == "trigger":
            trigger = _Trigger(*msg[1:])
            order.put(seq, trigger)
            while True:
                try:
                    return trigger.reply.result(timeout=TICK_S * 10)
                except TimeoutError:
                    if self._thread is None or not self._thread.is_alive():
                        # the enumerator failed: its error reaches the driver by the poll
                        return None, ErrorRecord.of(RuntimeError(
                            "the enumerator stopped before the checkpoint's trigger"), self.name)
        order.put(seq, msg)
        return None

    def poll(self, timeout_s: float) -> tuple[list[Any], dict[str, bool], dict, dict, int]:
        """As :meth:`SubtaskActor.poll <runtime.executor.ray.actor.SubtaskActor.poll>`:
        a failure of the enumerator (if any), whether it runs ("enumerator"), its gauges."""
        out: list[Any] = []
        try:
            out.append(self.outbox.get(timeout=timeout_s))
        except queue.Empty:
            pass
        running = self._thread is not None and self._thread.is_alive()
        return out, {"enumerator": running}, {}, dict(self.metrics.gauges), 0

    def stop(self) -> None:
        """End the control thread and close the enumerator (the job ended)."""
        self._stop.set()
        for order in list(self._in.values()):
            order.close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self.enumerator_io.shutdown(wait=False, cancel_futures=True)
        if self.enumerator is None:
            return
        try:
            self.enumerator.close()
        except Exception:  # noqa: BLE001
            log.exception("error while closing the enumerator (ignored)")

    # -- the control thread ---------------------------------------------------------------------
    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                try:
                    msg = self.inbox.get(timeout=TICK_S)
                except queue.Empty:
                    msg = None
                if msg is not None:
                    self._serve(msg)
                now = time.monotonic()
                for timer in self.context.timers:
                    if now >= timer[2]:
                        timer[0]()
                        timer[2] = now + timer[1]
        except BaseException as exc:  # noqa: BLE001 - reported: the driver fails the job
            self.outbox.put(m.TaskFailed(self.name, exc))

    def to_source(self, subtask: int, msg: Any) -> None:
        """A message to reader ``subtask`` (the enumerator context's way to the readers)."""
        self.readers.send(subtask, msg)

    def _serve(self, msg: Any) -> None:
        e = self.enumerator
        if serve_enumerator(e, self.registered, msg):
            return
        if isinstance(msg, m.CheckpointComplete):
            e.notify_checkpoint_complete(msg.checkpoint_id)
        elif isinstance(msg, _Trigger):
            try:
                state = e.snapshot_state(msg.checkpoint_id)
            except BaseException as exc:
                msg.reply.set_result((None, ErrorRecord.of(exc, self.name)))
                raise
            # after the snapshot, before any later assignment: in each reader's stream
            for subtask in range(len(self.readers)):
                self.readers.send(subtask, m.TriggerCheckpoint(msg.checkpoint_id, msg.savepoint,
                                                               msg.final))
            msg.reply.set_result((state, None))
