"""``hub run`` and ``hub savepoint``: assemble a validated pipeline into a job and run it.

Resuming is the default, as Debezium and Kafka Connect resume from stored offsets: a run starts
from the pipeline's latest completed checkpoint and says so; ``--from-savepoint DIR`` starts from
a savepoint; ``--fresh`` forgets existing checkpoints.  SIGINT/SIGTERM stop the pipeline with a
final checkpoint (a savepoint with ``--stop-with-savepoint``); a second signal exits at once.
"""
from __future__ import annotations

import argparse
import logging
import os
import shlex
import signal
import sys
import threading
import time
from datetime import datetime
from collections.abc import Callable, Iterable
from typing import Any

from hub.config import PipelineSpec
from hub.control import ControlWatcher, PipelineLock, request_savepoint
from hub.progress import ProgressDisplay
from runtime.checkpoint.storage import CheckpointStorage, CompletedCheckpoint, load_checkpoint
from runtime.deadletter import DeadLetterQueue
from runtime.errors import HubError
from runtime.executor.base import NOT_RUNNING, Executor
from runtime.executor.job import Job, JobResult
from runtime.executor.local import LocalExecutor
from runtime.executor.restart import RestartStrategy
from runtime.metrics import PipelineMetrics
from runtime.retry import Backoff
from runtime.sink import Sink
from runtime.source import Source

log = logging.getLogger("hub")


def _say(message: str) -> None:
    print(f"hub: {message}", file=sys.stderr, flush=True)


def _said_to(handle: Any) -> Callable[[str], None]:
    """A restart line said on stderr and recorded by the ``--http`` handle too."""
    def notify(line: str) -> None:
        _say(line)
        handle.on_restart(line)
    return notify


def control_dir(spec: PipelineSpec, storage: CheckpointStorage) -> str:
    """Where the run's lock and control files live: the checkpoint folder when it is local
    (file locks need a local filesystem), else ``./state/<name>``."""
    if storage.is_local:
        return storage.root
    return os.path.abspath(os.path.join("state", spec.name))


def _savepoint_name(given: str | None) -> str:
    return given or datetime.now().strftime("savepoint-%Y%m%d-%H%M%S")


def _describe(cp: CompletedCheckpoint) -> str:
    when = datetime.fromtimestamp(cp.timestamp_ms / 1000).strftime("%Y-%m-%d %H:%M:%S")
    return f"checkpoint {cp.checkpoint_id} of {when} ({cp.path})"


def make_connectors(spec: PipelineSpec) -> tuple[Source, Sink]:
    """The source and sink of a validated pipeline, both checked (the source's server answers,
    the sink's path is writable) so that a run fails before it starts, in one line."""
    source = spec.source_class(spec.source_config)
    sink = spec.sink_class(spec.sink_config)
    if spec.transforms or spec.routes or spec.schema_change_behavior != "evolve" \
            or spec.sink_schema_changes.is_set:
        # the operators run chained before the sink's writers (loaded only when used)
        from runtime.transform.operator import TransformingSink  # noqa: PLC0415

        sink = TransformingSink(sink, list(spec.transforms), list(spec.routes),
                                spec.schema_change_behavior, spec.sink_schema_changes)
    source.check()
    sink.check()
    return source, sink


def make_dead_letter(spec: PipelineSpec, skip: Iterable[str] = (),
                     metrics: PipelineMetrics | None = None) -> DeadLetterQueue:
    """The pipeline's dead-letter queue: ``[errors]``, plus the ids of ``--skip-record``."""
    return DeadLetterQueue(spec.errors.tolerance, spec.errors.dead_letter_path, spec.name,
                           skip=spec.errors.skip_records | frozenset(skip), metrics=metrics)


def build_job(spec: PipelineSpec, restore: CompletedCheckpoint | None,
              storage: CheckpointStorage, connectors: tuple[Source, Sink] | None = None,
              dead_letter: DeadLetterQueue | None = None) -> Job:
    """The runnable job of a validated pipeline (connects nowhere yet)."""
    source, sink = connectors or make_connectors(spec)
    return Job(
        name=spec.name, source=source, sink=sink, storage=storage,
        parallelism=spec.parallelism, checkpoint_interval_s=spec.checkpoint.interval_s,
        checkpoint_timeout_s=spec.checkpoint.timeout_s,
        tolerable_failed_checkpoints=spec.checkpoint.tolerable_failures,
        watermarks=spec.watermark,
        dead_letter=dead_letter or make_dead_letter(spec), restore=restore,
        channel_capacity=spec.channel_capacity, channel_bytes=spec.channel_bytes)


def _restore_point(spec: PipelineSpec, storage: CheckpointStorage,
                   args: argparse.Namespace, say: Callable[[str], None] = _say,
                   ) -> CompletedCheckpoint | None:
    if getattr(args, "fresh", False):
        storage.clear()
        say(f"starting fresh: existing checkpoints in {storage.root} were discarded")
        return None
    if getattr(args, "from_savepoint", None):
        sp = load_checkpoint(os.path.abspath(args.from_savepoint))
        say(f"starting from savepoint {sp.path} (checkpoint {sp.checkpoint_id})")
        # The savepoint becomes the pipeline's newest checkpoint, so that a crash before the
        # next checkpoint resumes from it, not from an older timeline's later checkpoint.
        new_id = max(storage.completed_ids() + [sp.checkpoint_id]) + 1
        data = {**sp.data, "checkpoint_id": new_id, "savepoint": None,
                "restored_from_savepoint": sp.path}
        return load_checkpoint(storage.store(new_id, data))
    cp = storage.latest()
    if cp is None:
        say(f"starting: no checkpoint in {storage.root} yet")
    else:
        say(f"resuming from {_describe(cp)}")
    return cp


class _Control:
    """What signals and ``hub savepoint`` act on: the executor of the run (the restart
    strategy, which passes requests on to the attempt running)."""

    def __init__(self, savepoint: str | None):
        self.executor: Executor | None = None
        self.savepoint = savepoint
        self.stop = threading.Event()
        self.signals = 0

    def on_signal(self, signum: int, _frame: Any) -> None:
        self.signals += 1
        if self.signals > 1:
            _say("second signal: exiting now without a final checkpoint")
            os._exit(130)
        _say(f"{signal.Signals(signum).name}: stopping with a final "
             f"{'savepoint' if self.savepoint else 'checkpoint'} (signal again to exit at once)")
        self.stop.set()
        if self.executor is not None:
            self.executor.request_stop(self.savepoint)

    def request_savepoint(self, name: str, reply: Any, stop: bool) -> None:
        if self.executor is None:
            reply(NOT_RUNNING, False)
        else:
            self.executor.request_savepoint(name, reply, stop)


def run(spec: PipelineSpec, args: argparse.Namespace,
        http: Callable[..., tuple[Any, Any]] | None = None) -> int:
    """``hub run``.  ``http(spec, metrics, control, listen)``, given for ``--http``: serves
    the run's status and metrics from a thread, returns its handle of the run and the
    function ending the server (the service's side: hub.service.main.serve_run)."""
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    storage = CheckpointStorage(spec.checkpoint.dir, spec.checkpoint.retain)
    storage.ensure()
    local = control_dir(spec, storage)
    lock = PipelineLock(local)
    lock.acquire(spec.name)
    stop_sp = args.stop_with_savepoint
    control = _Control(_savepoint_name(stop_sp) if stop_sp is not None else None)
    signal.signal(signal.SIGINT, control.on_signal)
    signal.signal(signal.SIGTERM, control.on_signal)
    metrics = PipelineMetrics(spec.parallelism)
    # One queue for every attempt: its count is the run's, and the summary reports it.
    dead_letter = make_dead_letter(spec, getattr(args, "skip_record", None) or (), metrics)
    if dead_letter.skip:
        _say(f"records sent to the dead letters if met: {', '.join(sorted(dead_letter.skip))}")
    watcher = ControlWatcher(local, control.request_savepoint)
    listen = getattr(args, "http", None)
    handle, stop_http = http(spec, metrics, control, listen) if http and listen else (None, None)
    progress = None if args.no_progress else ProgressDisplay(metrics, spec.name)
    if progress:
        for handler in logging.getLogger().handlers:
            progress.attach(handler)
    try:
        connectors: tuple[Source, Sink] | HubError
        try:
            connectors = make_connectors(spec)
        except HubError as exc:
            if not exc.transient:
                raise
            connectors = exc  # a server down at start: retried as [restart] says
        restore = _restore_point(spec, storage, args)
        watcher.start()
        if progress:
            progress.start()
        started = time.monotonic()
        try:
            result = _run_with_restarts(spec, storage, connectors, restore, metrics, control,
                                        dead_letter, getattr(args, "keep_output", False),
                                        getattr(args, "fresh", False),
                                        notify=_said_to(handle) if handle else _say)
            if handle:
                handle.state = "FINISHED" if result.status == "finished" else "STOPPED"
        except BaseException as exc:
            if handle:
                handle.state = "FAILED"
                handle.error(str(exc))
            raise
        finally:
            watcher.stopped.set()
            if progress:
                progress.stop()
                progress.draw()
        sink = connectors[1] if isinstance(connectors, tuple) else None
        _summary(spec, metrics, result, time.monotonic() - started, dead_letter, sink)
        return 0
    finally:
        if stop_http:
            stop_http()
        lock.release()


def restart_policy(spec: PipelineSpec) -> Backoff:
    """``[restart]`` as the runtime's backoff: ``attempts`` restarts in a row, waiting
    ``delay`` before the first and twice as long before each next, at most ``max-delay``."""
    r = spec.restart
    return Backoff(initial_s=r.delay_s, max_s=r.max_delay_s, retries=r.attempts, multiplier=2.0)


def _run_with_restarts(spec: PipelineSpec, storage: CheckpointStorage,
                       connectors: tuple[Source, Sink] | HubError | None,
                       restore: CompletedCheckpoint | None,
                       metrics: PipelineMetrics, control: _Control,
                       dead_letter: DeadLetterQueue | None = None, keep_output: bool = False,
                       fresh: bool = False, notify: Callable[[str], None] = _say) -> JobResult:
    """Run the pipeline's job under the runtime's restart strategy
    (:class:`~runtime.executor.restart.RestartStrategy`: after a transient error, a new attempt
    from the latest completed checkpoint with exponential backoff, as ``[restart]`` says).

    ``connectors`` are the checked source and sink, None to make them here, or the transient
    error making them failed with (a server down at start): making and checking them again is
    part of every attempt, so an outage at start or during a restart is retried too.

    Without a checkpoint to restore, the sink is first asked whether it holds output of an
    earlier run of the pipeline (:meth:`Sink.existing_output`); unless ``keep_output``, that
    ends the run with one line asking for a choice, before anything is written again."""
    checked = [None if isinstance(connectors, HubError) else connectors]

    def build(restore: CompletedCheckpoint | None) -> Job:
        # new connectors for every attempt after the first: nothing of a failed one is reused
        source_sink, checked[0] = checked[0] or make_connectors(spec), None
        if restore is None and not keep_output:
            _refuse_existing_output(spec, source_sink[1], fresh)
        return build_job(spec, restore, storage, source_sink, dead_letter)

    strategy = RestartStrategy(new_executor(spec, notify), restart_policy(spec),
                               storage, metrics, notify=notify)
    control.executor = strategy
    if control.stop.is_set():  # a signal came before the strategy was there
        strategy.request_stop(control.savepoint)
    try:
        return strategy.run_built(build, restore,
                                  connectors if isinstance(connectors, HubError) else None)
    finally:
        control.executor = None


def new_executor(spec: PipelineSpec, notify: Callable[[str], None] = _say
                 ) -> Callable[[PipelineMetrics], Executor]:
    """What runs each attempt: ``[pipeline] executor`` (the Ray one imported only when asked
    for: ray is an extra).  On Ray the job master restarts a job whose subtask failed, under
    ``[restart]`` too (its lines said by ``notify``); an attempt here ends when it gives up
    or when the job master itself is lost."""
    if spec.executor == "ray":
        from runtime.executor.ray.executor import RayExecutor
        return lambda m: RayExecutor(metrics=m, address=spec.ray_address,
                                     chain=spec.operator_chaining,
                                     restart=restart_policy(spec), notify=notify)
    return lambda m: LocalExecutor(metrics=m)


def _refuse_existing_output(spec: PipelineSpec, sink: Sink, fresh: bool) -> None:
    found = sink.existing_output(spec.name)
    if not found:
        return
    shown = "; ".join(found[:3]) + (f"; and {len(found) - 3} more" if len(found) > 3 else "")
    why = "--fresh discarded its checkpoints" if fresh else "it has no checkpoint to resume from"
    raise HubError(
        f"the {spec.sink_type} sink already holds output of an earlier run of pipeline "
        f"{spec.name!r} ({shown}), and {why}: starting over writes it again (a second copy "
        f"of change rows, a second snapshot over tables). Delete that output for a clean "
        f"copy, resume from a checkpoint or savepoint, or run again with --keep-output to add "
        f"to it")


def _summary(spec: PipelineSpec, metrics: PipelineMetrics, result: JobResult, elapsed: float,
             dead_letter: DeadLetterQueue | None = None, sink: Sink | None = None) -> None:
    totals = metrics.totals()
    rows_out = sum(o for _, o in totals.values())
    how = "finished" if result.status == "finished" else "stopped"
    _say(f"{spec.name} {how}: {rows_out:,} rows written in {elapsed:,.2f}s "
         f"({rows_out / max(elapsed, 1e-9):,.0f} rows/s), last checkpoint {result.last_checkpoint}")
    if metrics.dead_letters:
        where = f" ({dead_letter.file})" if dead_letter is not None and dead_letter.file else ""
        _say(f"{metrics.dead_letters:,} record{'s' if metrics.dead_letters != 1 else ''} sent to "
             f"the dead letters{where}")
    if result.savepoint_path:
        _say(f"savepoint: {result.savepoint_path}  (resume with  hub run {spec.path} "
             f"--from-savepoint {result.savepoint_path})")
    if sink is not None and rows_out:
        hint = sink.read_hint([t for t, (_, out) in totals.items() if out])
        if hint:
            python = os.path.relpath(sys.executable)
            python = sys.executable if python.startswith("..") else python
            _say(f"read it: {shlex.quote(python)} -c {shlex.quote(hint)}")


def savepoint(spec: PipelineSpec, args: argparse.Namespace) -> int:
    name = _savepoint_name(getattr(args, "name", None))
    storage = CheckpointStorage(spec.checkpoint.dir, spec.checkpoint.retain)
    path = request_savepoint(control_dir(spec, storage), spec.name, name,
                             stop=bool(getattr(args, "stop", False)),
                             timeout_s=spec.checkpoint.timeout_s + 30)
    print(path)
    return 0
