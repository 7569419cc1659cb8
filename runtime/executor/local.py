"""The local executor: every subtask a thread of this process, joined by bounded channels.

Topology: ``parallelism`` source subtasks, each forwarding to the sink subtask of the same index
(per-key order holds because a key's changes come from one split).  The calling thread runs the
control loop: it owns the split enumerator and the checkpoint coordinator, and it is the only
thread that talks to both.  A failure of any subtask cancels all of them; the error propagates
and the last completed checkpoint stays the one to resume from.

A stop always stops: the final checkpoint (at a stop request or the end of a bounded input)
must complete within ``checkpoint.timeout`` of the stop (a checkpoint in flight included);
when that expires the run ends with :class:`FinalCheckpointTimeout` and the last completed
checkpoint is kept.  Whatever was
prepared for a checkpoint that will never complete is released (``Committer.abort``) when the
run ends, and savepoint requests still waiting are answered with the reason.

It implements :class:`~runtime.executor.base.Executor` (the contract is there): a
``LocalExecutor`` runs one job once; the restart strategy makes one per attempt.  With
``serialize=True`` it behaves as a distributed executor would at its boundary: every message
between subtasks and the control thread, and every element between a source subtask and its
sink subtask, is pickled and unpickled on the way, and each subtask
gets its own unpickled copy of the source or sink (so a writer shares nothing with the
committer but the external system): the executor contract tests run it so.
"""
from __future__ import annotations

import logging
import pickle
import queue
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from runtime.channel import InputGate
from runtime.checkpoint.committer_task import CheckpointCommitted, CommitFailed
from runtime.checkpoint.coordinator import CheckpointCoordinator
from runtime.errors import HubError, TerminalError
from runtime.executor import messages as m
from runtime.executor.base import Executor, SavepointReply
from runtime.executor.failure import locate, operator_of
from runtime.executor.job import Job, JobResult
from runtime.executor.sink_task import SinkTask
from runtime.executor.source_task import SourceTask
from runtime.metrics import PipelineMetrics
from runtime.rescale import writer_states_for
from runtime.sink import WriterContext
from runtime.source import EnumeratorContext, Split
from runtime.watermark import IDLE

log = logging.getLogger("hub.runtime")

#: How long the end of a run waits for its subtasks to stop (all together).
JOIN_S = 30.0
FAILED_JOIN_S = 5.0


def serve_enumerator(enumerator: Any, registered: set[int], msg: Any) -> bool:
    """Serve ``msg`` if it is for the split enumerator (a reader's split request,
    registration or event, or the result of the enumerator's blocking I/O): the control
    thread of either executor that runs it (the local one's, the Ray enumerator host's).
    False: not such a message."""
    if isinstance(msg, m.SplitRequest):
        enumerator.handle_split_request(msg.subtask)
    elif isinstance(msg, m.ReaderRegistered):
        registered.add(msg.subtask)
        enumerator.add_reader(msg.subtask)
    elif isinstance(msg, m.ReaderEvent):
        enumerator.handle_reader_event(msg.subtask, msg.event)
    elif isinstance(msg, m.AsyncDone):
        msg.handler(msg.result, msg.error)
    else:
        return False
    return True


class QueuedEnumeratorContext(EnumeratorContext):
    """The enumerator's context of an executor that runs the enumerator on one control
    thread fed by a queue: the local executor's, and the Ray executor's enumerator host.

    ``host`` gives: ``to_source(subtask, msg)`` (a message to a reader, in order),
    ``registered`` (the readers registered), ``metrics``, ``inbox`` (the control thread's
    queue, where blocking I/O's results come back as :class:`~runtime.executor.messages.
    AsyncDone`) and ``enumerator_io`` (the one thread blocking enumerator I/O runs on)."""

    def __init__(self, host: Any, parallelism: int):
        self.parallelism = parallelism
        self._host = host
        self.timers: list[list[Any]] = []  # [fn, interval, next_due]

    def assign_splits(self, assignment: dict[int, list[Split]]) -> None:
        for subtask, splits in assignment.items():
            if splits:
                self._host.to_source(subtask, m.AddSplits([s.to_dict() for s in splits]))

    def signal_no_more_splits(self, subtask: int) -> None:
        self._host.to_source(subtask, m.NoMoreSplits())

    def send_event_to_reader(self, subtask: int, event: dict[str, Any]) -> None:
        self._host.to_source(subtask, m.SourceEvent(event))

    def registered_readers(self) -> list[int]:
        return sorted(self._host.registered)

    def set_gauge(self, name: str, value: float, agg: str = "sum") -> None:
        self._host.metrics.set_gauge("enumerator", name, value, agg)

    def schedule(self, fn: Callable[[], None], interval_s: float) -> None:
        self.timers.append([fn, interval_s, time.monotonic() + interval_s])

    def call_async(self, fn: Callable[[], Any], handler: Callable[[Any, BaseException | None],
                                                                  None]) -> None:
        def done(future: Future) -> None:
            error = future.exception()
            self._host.inbox.put(m.AsyncDone(handler, None if error else future.result(),
                                             error))
        self._host.enumerator_io.submit(fn).add_done_callback(done)


class FinalCheckpointTimeout(HubError):
    """The final checkpoint did not complete within ``checkpoint.timeout``: the job stopped
    without it (terminal: stopping was asked for, or the input ended)."""


class _Crossing:
    """One direction of the executor boundary: a queue whose messages are plain data.  With
    ``serialize`` every message is pickled on the way in and unpickled on the way out, as a
    distributed executor moves it (tests: a message that is not plain data fails there)."""

    def __init__(self, serialize: bool):
        self.queue: queue.Queue = queue.Queue()
        self.serialize = serialize

    def put(self, msg: Any) -> None:
        if self.serialize and type(msg) is not m.AsyncDone:  # AsyncDone never crosses
            msg = pickle.loads(pickle.dumps(msg))
        self.queue.put(msg)

    def get(self, timeout: float | None = None) -> Any:
        return self.queue.get(timeout=timeout)

    def get_nowait(self) -> Any:
        return self.queue.get_nowait()


def _distribute(states: list[list[dict]], n: int) -> list[list[dict]]:
    """Reader states for ``n`` subtasks: same index when parallelism is unchanged, otherwise
    the splits are dealt out round-robin (a split is never cut)."""
    if len(states) == n:
        return states
    flat = [s for per_reader in states for s in per_reader]
    return [flat[i::n] for i in range(n)]


class LocalExecutor(Executor):
    """Runs one job once, every subtask a thread of this process.  ``job`` may be given here
    (then ``run()``) or to :meth:`run`."""

    def __init__(self, job: Job | None = None, metrics: PipelineMetrics | None = None,
                 serialize: bool = False):
        self.job = job
        self.metrics = metrics or PipelineMetrics(job.parallelism if job else 1)
        self.serialize = serialize
        self.attempt = uuid.uuid4().hex[:8]
        #: subtasks (and requests) -> the control thread
        self.inbox = _Crossing(serialize)
        self.sources: list[SourceTask] = []
        self.sinks: list[SinkTask] = []
        self.registered: set[int] = set()
        self._stop: tuple[str | None] | None = None
        self._stop_lock = threading.Lock()
        #: savepoint requests not yet triggered (answered with an error if the job ends first)
        self._savepoint_requests: list[m.SavepointRequest] = []
        #: who asked for which savepoint: the replies stay here, requests carry only an id
        self._replies: dict[str, SavepointReply] = {}
        self._ended: str | None = None
        #: the enumerator's blocking I/O (``call_async``): one thread, so calls keep their order
        self.enumerator_io = ThreadPoolExecutor(1, thread_name_prefix="enumerator-io")

    # -- requests from other threads (signal handlers, control watchers) ------------------------
    def request_stop(self, savepoint: str | None = None) -> None:
        """Stop gracefully: one final checkpoint (a savepoint when named), then end."""
        with self._stop_lock:
            if self._stop is None:
                self._stop = (savepoint,)

    def request_savepoint(self, name: str, reply: SavepointReply | None = None,
                          stop: bool = False) -> None:
        request_id = uuid.uuid4().hex
        with self._stop_lock:  # so that the end of the run can't come between check and put
            ended = self._ended
            if ended is None:
                if reply is not None:
                    self._replies[request_id] = reply
                self.inbox.put(m.SavepointRequest(name, stop, request_id))
        if ended is not None and reply is not None:
            reply(ended, False)

    def _reply(self, request: m.SavepointRequest, text: str, ok: bool) -> None:
        """Tell the requester of ``request`` (once); a failing reply is logged."""
        with self._stop_lock:
            reply = self._replies.pop(request.request_id, None)
        if reply is None:
            return
        try:
            reply(text, ok)
        except Exception as exc:  # noqa: BLE001
            log.warning("could not answer savepoint request %r: %s", request.name, exc)

    def _answer(self, pending: Any, request: m.SavepointRequest) -> None:
        """Have the requester of a savepoint told its folder, or why it was not taken."""
        pending.on_complete.append(lambda path: self._reply(request, path, True))
        pending.on_abort.append(lambda reason: self._reply(request, reason, False))

    def to_source(self, subtask: int, msg: Any) -> None:
        """A message from the control thread to source subtask ``subtask``."""
        if self.serialize:
            msg = pickle.loads(pickle.dumps(msg))
        self.sources[subtask].control.put(msg)

    def _copy(self, plugin: Any, what: str) -> Any:
        """What a subtask gets of the job's source or sink: the object itself, or (serialize)
        its own copy, as a distributed executor ships it."""
        if not self.serialize:
            return plugin
        try:
            return pickle.loads(pickle.dumps(plugin))
        except Exception as exc:  # noqa: BLE001 - any pickling failure: said in one line
            raise TerminalError(
                f"the {operator_of(plugin)} {what} can't be sent to its subtasks: "
                f"{type(exc).__name__}: {exc} (it must hold plain data, no clients, locks "
                f"or open files)") from exc

    # -- the run ------------------------------------------------------------------------------
    def run(self, job: Job | None = None) -> JobResult:
        if job is not None:
            if self.job is not None and self.job is not job:
                raise RuntimeError("a LocalExecutor runs one job once; make a new one")
            self.job = job
        if self.job is None:
            raise RuntimeError("LocalExecutor.run: no job given")
        if self.sources or self._ended is not None:
            raise RuntimeError("a LocalExecutor runs one job once; make a new one")
        try:
            return self._run(self.job)
        finally:
            self._end()

    def _end(self) -> None:
        """No job runs any more: requests still waiting, or coming from now on, are told."""
        with self._stop_lock:
            self._ended = "the job ended before the savepoint could be taken"
        while True:
            try:
                msg = self.inbox.get_nowait()
            except queue.Empty:
                break
            if isinstance(msg, m.SavepointRequest):
                self._reply(msg, self._ended, False)
            elif isinstance(msg, m.TaskFailed):
                m.dropped_after_cancel(log, msg.task, msg.error)

    def _run(self, job: Job) -> JobResult:
        p = job.parallelism
        job.storage.ensure()
        restore = job.restore
        # Refused before anything is done: writer state that can't follow the parallelism
        writer_states = writer_states_for(
            job.sink, restore.data["sink"]["writers"] or [None], p, restore.checkpoint_id,
            operator_of(job.sink)) if restore else [None] * p
        # what each subtask gets of the source and sink (its own copy when serializing)
        sinks = [self._copy(job.sink, "sink") for _ in range(p)]
        sources = [self._copy(job.source, "source") for _ in range(p)]
        committer = job.sink.create_committer()
        coordinator = CheckpointCoordinator(
            job.name, job.storage, committer, p, p, job.checkpoint_interval_s,
            job.checkpoint_timeout_s, self.metrics,
            next_id=(restore.checkpoint_id + 1) if restore else 1,
            tolerable_failures=job.tolerable_failed_checkpoints,
            operators=(f"{operator_of(job.source)} reader", f"{operator_of(job.sink)} writer"),
            job_id=restore.data.get("job_id") if restore else None,
            dead_letter=job.dead_letter)
        if restore:
            self.metrics.restored_from = restore.checkpoint_id
            self.metrics.watermark_ms = restore.data.get("watermark_ms")
        # Whatever the restored checkpoint prepared becomes visible now; anything prepared
        # after it is rolled back, before a single new row is written.
        restored_committables = restore.data["sink"]["committables"] if restore else []
        coordinator.carried = coordinator.commit(
            restored_committables, restore.checkpoint_id if restore else 0,
            restore.data.get("watermark_ms") if restore else None, recover=True)

        enum_ctx = QueuedEnumeratorContext(self, job.parallelism)
        enum_state = restore.data["source"]["enumerator"] if restore else None
        enumerator = self._create_enumerator(job, enum_ctx, enum_state)
        reader_states = _distribute(restore.data["source"]["readers"], p) if restore else [[]] * p

        gates = self._create_subtasks(job, sources, sinks, reader_states, writer_states)
        finished: set[int] = set()
        error: BaseException | None = None
        result: JobResult | None = None
        try:
            enumerator.start()
            coordinator.start_committer(self.inbox)  # commits leave the control thread
            for t in self.sinks + self.sources:
                t.start()
            result = self._control_loop(coordinator, enumerator, enum_ctx, finished)
        except BaseException as exc:
            error = locate(exc, f"the control thread (enumerator of "
                                f"{operator_of(job.source)}, checkpoint coordinator)")
            raise
        finally:
            # an I/O call still running is not waited for: its result has no one to go to
            self.enumerator_io.shutdown(wait=False, cancel_futures=True)
            self._shutdown(gates, error is not None)
            if error is not None:
                self._release(coordinator, error)
            closeables = [(enumerator, "enumerator")]
            if coordinator.stop_committer(error is not None,
                                          FAILED_JOIN_S if error is not None else JOIN_S):
                closeables.append((committer, "committer"))  # not while it still commits
            for closeable, what in closeables:
                try:
                    closeable.close()
                except Exception:  # noqa: BLE001
                    log.exception("error while closing the %s (ignored)", what)
        return result

    def _create_enumerator(self, job: Job, context: EnumeratorContext, state: dict | None
                           ) -> Any:
        """The job's split enumerator, run by the control loop (the Ray executor overrides
        it: the enumerator in the actor of reader 0, behind a proxy)."""
        return job.source.create_enumerator(context, state)

    def _create_subtasks(self, job: Job, sources: list, sinks: list,
                         reader_states: list[list[dict]], writer_states: list[dict | None]
                         ) -> list[InputGate]:
        """Make (not start) the subtasks into ``self.sources`` and ``self.sinks``, source
        ``i`` forwarding to sink ``i``; the gates returned are closed when the job fails.
        The one part of a run that says where subtasks live: the Ray executor overrides it
        (and :meth:`_shutdown`) and shares everything else, the control loop included."""
        p = job.parallelism
        gates = [InputGate(1, job.channel_capacity, job.channel_bytes) for _ in range(p)]
        for i in range(p):
            self.sinks.append(SinkTask(sinks[i], self.writer_context(job, i), writer_states[i],
                                       gates[i], self.inbox, self.metrics))
            self.sources.append(SourceTask(sources[i], i, p, reader_states[i], gates[i], 0,
                                           self.inbox, job.watermarks, self.metrics,
                                           job.dead_letter, self.serialize))
        return gates

    def writer_context(self, job: Job, subtask: int) -> WriterContext:
        return WriterContext(job.name, subtask, job.parallelism, self.attempt,
                             job.storage.state_dir, job.dead_letter, job.checkpoint_timeout_s)

    def _release(self, coordinator: CheckpointCoordinator, error: BaseException) -> None:
        """The job failed or stopped without its final checkpoint: what was prepared for
        checkpoints that will never complete is released now, not at the next start, and
        whoever waits for a savepoint is told."""
        reason = f"the job ended: {error}" if str(error) else f"the job ended: {type(error).__name__}"
        requests = self._savepoint_requests
        while True:  # acks and requests that came in while subtasks stopped
            try:
                msg = self.inbox.get_nowait()
            except queue.Empty:
                break
            if isinstance(msg, m.SinkAck):
                coordinator.prepared_unstored(msg.checkpoint_id, msg.committables)
            elif isinstance(msg, m.SavepointRequest):
                requests.append(msg)
            elif isinstance(msg, m.TaskFailed):  # the job's own error was taken already
                m.dropped_after_cancel(log, msg.task, msg.error)
        try:
            coordinator.abort(reason)
        except Exception:  # noqa: BLE001 - the job's own error is the one to report
            log.exception("releasing prepared data after the job ended failed (ignored)")
        for r in requests:
            self._reply(r, reason, False)
        requests.clear()

    def _control_loop(self, coordinator: CheckpointCoordinator, enumerator: Any,
                      enum_ctx: QueuedEnumeratorContext, finished: set[int]) -> JobResult:
        p = self.job.parallelism
        final_id: int | None = None
        final_savepoint_path: list[str] = []
        savepoint_requests = self._savepoint_requests
        #: when the stop was first seen: the whole stop gets checkpoint.timeout, including
        #: the wait for a checkpoint in flight, so that a blocked sink can't make it double
        stop_seen: float | None = None
        while True:
            timeout = 0.05
            try:
                msg = self.inbox.get(timeout=timeout)
            except queue.Empty:
                msg = None
            if msg is not None:
                if isinstance(msg, m.TaskFailed):
                    raise msg.error.rebuild()
                if serve_enumerator(enumerator, self.registered, msg):
                    pass
                elif isinstance(msg, m.SourceFinished):
                    finished.add(msg.subtask)
                elif isinstance(msg, m.SourceAck):
                    if coordinator.ack_source(msg.subtask, msg.checkpoint_id, msg.splits):
                        self._completed(coordinator, enumerator)
                elif isinstance(msg, m.SinkAck):
                    if coordinator.ack_sink(msg.subtask, msg.checkpoint_id, msg.committables,
                                            msg.state, IDLE if msg.idle else msg.watermark_ms):
                        self._completed(coordinator, enumerator)
                elif isinstance(msg, m.SavepointRequest):
                    savepoint_requests.append(msg)
                elif isinstance(msg, (CheckpointCommitted, CommitFailed)):
                    self._committed(coordinator, msg)
            if final_id is not None:
                if coordinator.last_committed == final_id:  # stored, and committed
                    status = "stopped" if self._stop is not None else "finished"
                    return JobResult(status, final_id,
                                     final_savepoint_path[0] if final_savepoint_path else None)
                if coordinator.check_timeout():
                    # A stop always stops: a sink blocked on a lock must not hold the process.
                    kept = coordinator.last_completed or self.metrics.restored_from
                    raise FinalCheckpointTimeout(
                        f"final checkpoint {final_id} did not complete within "
                        f"{coordinator.timeout_s:g}s of the stop (checkpoint.timeout; a source or "
                        f"sink is blocked); stopped without it: "
                        + (f"the last completed checkpoint {kept} is kept and the next run "
                           f"resumes from it" if kept else
                           "no checkpoint completed, the next run starts from the beginning"))
                continue
            now = time.monotonic()
            for timer in enum_ctx.timers:
                if now >= timer[2]:
                    timer[0]()
                    timer[2] = now + timer[1]
            if stop_seen is None and (self._stop is not None or len(finished) == p
                                      or any(r.stop for r in savepoint_requests)):
                stop_seen = now
            coordinator.check_timeout()
            if coordinator.pending is not None:
                continue
            stop_savepoint = None
            stopping = self._stop is not None or len(finished) == p
            if self._stop is not None:
                stop_savepoint = self._stop[0]
            req = next((r for r in savepoint_requests if r.stop), None)
            if req is not None:
                stopping, stop_savepoint = True, req.name
                self.request_stop(req.name)
            if stopping:
                pending = self._trigger(coordinator, enumerator, stop_savepoint, final=True,
                                        deadline=(stop_seen or now) + coordinator.timeout_s)
                final_id = pending.checkpoint_id
                if stop_savepoint:
                    pending.on_complete.append(final_savepoint_path.append)
                for r in savepoint_requests:
                    self._answer(pending, r)
                savepoint_requests.clear()
            elif savepoint_requests:
                req = savepoint_requests.pop(0)
                pending = self._trigger(coordinator, enumerator, req.name)
                self._answer(pending, req)
            elif coordinator.due():
                self._trigger(coordinator, enumerator)

    def _trigger(self, coordinator: CheckpointCoordinator, enumerator: Any,
                 savepoint: str | None = None, final: bool = False,
                 deadline: float | None = None):
        # The enumerator is snapshotted before the triggers go out: splits it assigns from
        # now on reach readers after the trigger, so they are in exactly one of both states.
        cid = coordinator.next_id
        pending = coordinator.trigger(enumerator.snapshot_state(cid), savepoint, final,
                                      deadline)
        for t in self.sources:
            self.to_source(t.subtask, m.TriggerCheckpoint(pending.checkpoint_id, savepoint, final))
        return pending

    def _completed(self, coordinator: CheckpointCoordinator, enumerator: Any) -> None:
        cid = coordinator.last_completed
        assert cid is not None
        enumerator.notify_checkpoint_complete(cid)
        for t in self.sources:
            if t.is_alive():
                self.to_source(t.subtask, m.CheckpointComplete(cid))
        for t in self.sinks:
            if t.is_alive():
                t.control.put(m.CheckpointStored(cid))

    def _committed(self, coordinator: CheckpointCoordinator,
                   report: CheckpointCommitted | CommitFailed) -> None:
        """The committer task reported: tell the writers (a failed commit raises)."""
        cid = coordinator.commit_reported(report)
        for t in self.sinks:
            if t.is_alive():
                t.control.put(m.CheckpointComplete(cid))

    def _shutdown(self, gates: list[InputGate], failed: bool) -> None:
        if failed:
            for t in self.sources + self.sinks:
                t.cancelled.set()
            for t in self.sources:
                t.control.put(m.Cancel())
            for g in gates:
                g.close()
        # After a failure a subtask blocked in a client call may never return: it is a daemon
        # thread, left behind after a short wait rather than holding the stop.
        deadline = time.monotonic() + (FAILED_JOIN_S if failed else JOIN_S)
        for t in self.sources + self.sinks:
            if t.ident is None:  # never started: the failure came before
                continue
            t.join(timeout=max(0.0, deadline - time.monotonic()))
            if t.is_alive():
                log.error("%s did not stop within %gs; left behind", t.name,
                          FAILED_JOIN_S if failed else JOIN_S)
