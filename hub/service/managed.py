"""One pipeline run by the service: the runner's restart loop in a thread of its own.

Why threads, not processes: the subtasks of a pipeline are already threads of one process
(the local executor), so a pipeline in a thread costs nothing the runtime does not already pay,
and the service reads its counters directly (no metrics shipped between processes).  What
survives what:

* a pipeline that fails (any exception, a bug included) ends in ``FAILED`` with its error
  line; the other pipelines and the service go on;
* ``kill -9`` of the service (or a crash of the process) ends every pipeline at once, as it
  ends a ``hub run``: each one holds its checkpoint folder's lock only as long as the process
  lives, and the next start of the service resumes each from its latest completed checkpoint,
  exactly once as after a killed ``hub run`` (tests/e2e/test_serve_kill.py);
* what a thread can't contain (a native crash of a client library, memory exhausted) takes
  the whole service down, and its restart resumes every pipeline as above.
"""
from __future__ import annotations

import argparse
import logging
import threading
import time
from collections.abc import Callable

from hub import runner
from hub.config import PipelineSpec
from hub.control import ControlWatcher, PipelineLock
from hub.service.handle import PipelineHandle
from runtime.checkpoint.storage import CheckpointStorage
from runtime.errors import HubError
from runtime.executor.failure import describe
from runtime.metrics import PipelineMetrics

log = logging.getLogger("hub.service")

#: How long a stop waits for the pipeline's final checkpoint before answering (it goes on).
STOP_WAIT_S = 60.0


class Conflict(HubError):
    """A request that does not fit the pipeline's state (resume a running one)."""


class ManagedPipeline(PipelineHandle):
    """A pipeline of the service.  ``on_event(pipeline, event)`` is called in its thread with
    ``"restored"`` once the run chose its restore point (a savepoint it started from is then
    copied into its own checkpoints) and ``"ended"`` when the run ended (finished, stopped,
    failed)."""

    def __init__(self, spec: PipelineSpec, on_event: Callable[[ManagedPipeline, str], None]):
        super().__init__(spec)
        self.on_event = on_event
        self._thread: threading.Thread | None = None
        self._then = "STOPPED"  # the state a requested stop ends in (STOPPED or PAUSED)

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    @property
    def stopping(self) -> bool:
        """A stop (or pause) was asked for and the run has not ended yet."""
        control = self.control
        return self.running and control is not None and control.stop.is_set()

    def start(self, from_savepoint: str | None = None) -> None:
        """Start a run: from ``from_savepoint`` when given, else from the latest checkpoint."""
        with self._lock:
            if self.running:
                raise Conflict(f"pipeline {self.name!r} is already running")
            self.metrics = PipelineMetrics(self.spec.parallelism)  # each run counts anew
            self.savepoint = None  # the last savepoint of this run (a stop may resume from it)
            self.state, self._then = "RUNNING", "STOPPED"
            self.control = runner._Control(None)
            self._thread = threading.Thread(target=self._run, args=(from_savepoint,),
                                            name=f"pipeline-{self.name}", daemon=True)
            self._thread.start()

    def stop(self, savepoint: str | None = None, then: str = "STOPPED",
             wait_s: float | None = STOP_WAIT_S) -> bool:
        """Stop with a final checkpoint (savepoint ``savepoint`` when named); the pipeline
        ends in ``then``.  Waits up to ``wait_s`` for the end; True when it ended."""
        with self._lock:
            thread, control = self._thread, self.control
            if thread is None or not thread.is_alive():
                if self.state in ("RUNNING", "RESTARTING", "FAILED", "UNASSIGNED"):
                    self.state = then
                return True
            self._then = then
            control.savepoint = savepoint
            control.stop.set()
            executor = control.executor
        # the run checks control.stop right after making its executor: one of the two sees it
        if executor is not None:
            executor.request_stop(savepoint)
        thread.join(wait_s)
        return not thread.is_alive()

    def join(self, timeout: float | None = None) -> None:
        if self._thread is not None:
            self._thread.join(timeout)

    def request_savepoint(self, name: str, stop: bool, timeout_s: float) -> str:
        """Take savepoint ``name`` (then stop when ``stop``); returns its folder."""
        control = self.control
        if not self.running or control is None:
            raise Conflict(f"pipeline {self.name!r} is not running ({self.state})")
        done = threading.Event()
        answer: list[tuple[str, bool]] = []

        def reply(text: str, ok: bool) -> None:
            answer.append((text, ok))
            done.set()

        if stop:
            self._then = "STOPPED"
        control.request_savepoint(name, reply, stop)
        if not done.wait(timeout_s):
            raise HubError(f"savepoint {name!r} of {self.name!r} not completed within "
                           f"{timeout_s:.0f}s")
        text, ok = answer[0]
        if not ok:
            raise Conflict(f"savepoint {name!r} of {self.name!r} not taken: {text}")
        return text

    # -- the run ------------------------------------------------------------------------------
    def _say(self, message: str) -> None:
        runner._say(f"{self.name}: {message}")

    def _run(self, from_savepoint: str | None) -> None:
        spec = self.spec
        try:
            storage = CheckpointStorage(spec.checkpoint.dir, spec.checkpoint.retain)
            storage.ensure()
            lock = PipelineLock(runner.control_dir(spec, storage))
            lock.acquire(spec.name)
            try:
                self._run_locked(storage, lock, from_savepoint)
            finally:
                lock.release()
        except HubError as exc:
            self._failed(str(exc))
        except Exception as exc:  # noqa: BLE001 - a bug in one pipeline must not end the service
            self._failed(f"internal error {describe(exc)}")
            log.error("%s: internal error", self.name, exc_info=True)
        finally:
            try:
                self.on_event(self, "ended")
            except Exception:  # noqa: BLE001
                log.exception("%s: recording the end of the run failed", self.name)

    def _run_locked(self, storage: CheckpointStorage, lock: PipelineLock,
                    from_savepoint: str | None) -> None:
        spec, control = self.spec, self.control
        dead_letter = runner.make_dead_letter(spec, (), self.metrics)
        connectors: tuple | HubError
        try:
            connectors = runner.make_connectors(spec)
        except HubError as exc:
            if not exc.transient:
                raise
            connectors = exc  # a server down at start: retried as [restart] says
        args = argparse.Namespace(fresh=False, from_savepoint=from_savepoint)
        restore = runner._restore_point(spec, storage, args, say=self._say)
        self.on_event(self, "restored")
        watcher = ControlWatcher(lock.path.rsplit("/", 1)[0], control.request_savepoint)
        watcher.start()
        started = time.monotonic()
        try:
            result = runner._run_with_restarts(spec, storage, connectors, restore, self.metrics,
                                               control, dead_letter, notify=self._restarting)
        finally:
            watcher.stopped.set()
        if result.savepoint_path:
            self.savepoint = result.savepoint_path
        self.state = "FINISHED" if result.status == "finished" else self._then
        runner._summary(spec, self.metrics, result, time.monotonic() - started, dead_letter)

    def _restarting(self, line: str) -> None:
        self._say(line)
        self.on_restart(line)

    def _failed(self, message: str) -> None:
        self.state = "FAILED"
        self.error(message)
        log.error("%s: failed: %s", self.name, message)
