"""What the service knows of one pipeline, and the status document built from it.

A :class:`PipelineHandle` is read by the API, the page and the Prometheus collector from their
own threads while the pipeline runs: everything here only reads the runtime's counters
(:class:`~runtime.metrics.PipelineMetrics`) and the attempt's executor, never asks the
subtasks, so a slow or stuck pipeline can't block a status request.
"""
from __future__ import annotations

import logging
import os
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Any

from hub.config import PipelineSpec
from runtime.checkpoint.storage import METADATA, CheckpointStorage
from runtime.errors import HubError
from runtime.metrics import PipelineMetrics

log = logging.getLogger("hub.service")

#: Pipeline states, Kafka Connect's names plus Flink's FINISHED and the service's own.
STATES = ("UNASSIGNED", "RUNNING", "RESTARTING", "PAUSED", "STOPPED", "FINISHED", "FAILED")

#: Errors remembered per pipeline for the status and the page.
RECENT_ERRORS = 20


@dataclass(frozen=True)
class ErrorEntry:
    at: float
    message: str


class PipelineHandle:
    """State, counters and recent errors of one pipeline.  ``control`` is what the run in
    progress takes requests through (the runner's ``_Control``: its ``executor`` is the
    restart strategy while an attempt runs), None while none runs."""

    def __init__(self, spec: PipelineSpec):
        self.spec = spec
        self.name = spec.name
        self.state = "UNASSIGNED"
        self.metrics = PipelineMetrics(spec.parallelism)
        self.control: Any = None
        self.errors: deque[ErrorEntry] = deque(maxlen=RECENT_ERRORS)
        self.restarts = 0
        #: errors met since the service started (``errors`` keeps only the recent ones)
        self.error_count = 0
        self.savepoint: str | None = None
        self._lock = threading.Lock()
        self._position: tuple[int, list[Any]] | None = None

    @property
    def storage(self) -> CheckpointStorage:
        return CheckpointStorage(self.spec.checkpoint.dir, self.spec.checkpoint.retain)

    # -- what the run reports -----------------------------------------------------------------
    def error(self, message: str) -> None:
        """Remember an error line (the run's failure, or a restart's reason)."""
        self.errors.append(ErrorEntry(time.time(), message))
        self.error_count += 1

    def on_restart(self, line: str) -> None:
        """The restart strategy's line at each restart: counted and remembered."""
        self.restarts += 1
        self.error(line)

    def current_state(self) -> str:
        """``state``, told ``RESTARTING`` while a running pipeline waits between two attempts
        after a failure (on Ray: its job master does, ``restarting``)."""
        state = self.state
        if state != "RUNNING" or not self.restarts:
            return state
        attempt = self.attempt()
        if attempt is None or getattr(attempt, "restarting", False):
            return "RESTARTING"
        return state

    @property
    def last_error(self) -> str | None:
        return self.errors[-1].message if self.errors else None

    # -- reading ------------------------------------------------------------------------------
    def attempt(self) -> Any:
        """The executor of the attempt running (a LocalExecutor), or None."""
        strategy = getattr(self.control, "executor", None)
        return getattr(strategy, "current", None) if strategy is not None else None

    def subtasks(self) -> list[dict[str, Any]]:
        """Per subtask: its source and sink thread's state, rows, channel fill, event time."""
        m = self.metrics
        ex = self.attempt()
        sources = list(getattr(ex, "sources", []) or [])
        sinks = list(getattr(ex, "sinks", []) or [])
        now = time.time()
        out = []
        for i in range(m.parallelism):
            ts = m.last_event_ts_ms[i] if i < len(m.last_event_ts_ms) else None
            gate = getattr(sinks[i], "gate", None) if i < len(sinks) else None
            out.append({
                "id": i,
                "source": _thread_state(sources[i] if i < len(sources) else None, self.state),
                "sink": _thread_state(sinks[i] if i < len(sinks) else None, self.state),
                "rows_in": sum(m.rows_in[i].values()) if i < len(m.rows_in) else 0,
                "rows_out": sum(m.rows_out[i].values()) if i < len(m.rows_out) else 0,
                "queued": gate.queued() if gate is not None else 0,
                "capacity": gate.capacity * gate.num_inputs if gate is not None else 0,
                "backpressure_s": gate.waited_s if gate is not None else 0.0,
                "event_time_lag_s": None if ts is None else max(0.0, now - ts / 1000),
            })
        return out

    def source_position(self) -> dict[str, Any] | None:
        """The split states of the latest completed checkpoint (where a restart resumes):
        ``{"checkpoint_id", "readers": [[split, ...], ...]}``; read from the checkpoint once
        per checkpoint."""
        info = self.metrics.last_checkpoint
        storage = self.storage
        try:
            if info is None or self._position is None or self._position[0] != info.checkpoint_id:
                cp = storage.latest()
                if cp is None:
                    return None
                readers = cp.data.get("source", {}).get("readers", [])
                self._position = (cp.checkpoint_id, readers)
        except (HubError, OSError) as exc:
            log.warning("%s: can't read the latest checkpoint for its position: %s",
                        self.name, exc)
            return None
        return {"checkpoint_id": self._position[0], "readers": self._position[1]}

    def checkpoint_size(self, checkpoint_id: int) -> int | None:
        """Bytes of checkpoint ``checkpoint_id``'s metadata (None when gone or remote)."""
        path = os.path.join(self.storage.checkpoints_dir, f"chk-{checkpoint_id:06d}", METADATA)
        try:
            return os.path.getsize(path)
        except OSError:
            return None

    def status(self) -> dict[str, Any]:
        """The status document of the API (``GET /pipelines/{name}/status``)."""
        m, now = self.metrics, time.time()
        cp = m.last_checkpoint
        totals = m.totals()
        per_op = m.ops_totals()
        gauges = m.gauge_values()
        wm = m.watermark_ms
        return {
            "name": self.name,
            "state": self.current_state(),
            "source": self.spec.source_type,
            "sink": self.spec.sink_type,
            "parallelism": self.spec.parallelism,
            "uptime_s": round(now - m.started_at, 3),
            "rows_in": sum(i for i, _ in totals.values()),
            "rows_out": sum(o for _, o in totals.values()),
            "tables": [{"table": t, "rows_in": i, "rows_out": o,
                        "ops": {op: n for (tt, op), n in per_op.items() if tt == t}}
                       for t, (i, o) in totals.items()],
            "lag": {
                "event_time_lag_s": _round(m.event_time_lag_s(now)),
                "fetch_lag_s": _round(gauges.get("binlog_lag_s")),
                "idle_s": _round(m.idle_s(now)),
                "watermark_lag_s": _round(max(0.0, now - wm / 1000))
                if wm is not None and wm < 2**62 else None,
            },
            "checkpoints": {
                "completed": m.checkpoints_completed,
                "failed": m.checkpoints_failed,
                "restored_from": m.restored_from,
                "last": None if cp is None else {
                    "id": cp.checkpoint_id, "completed_at": cp.completed_at,
                    "age_s": round(now - cp.completed_at, 3),
                    "duration_s": round(cp.duration_s, 4), "savepoint": cp.savepoint},
            },
            "subtasks": self.subtasks(),
            "source_position": self.source_position(),
            "gauges": gauges,
            "schema_changes": sum(m.schema_changes),
            "dead_letters": m.dead_letters,
            "restarts": self.restarts,
            "last_error": self.last_error,
            "errors": [{"at": e.at, "message": e.message} for e in self.errors],
            "savepoint": self.savepoint,
        }


def _thread_state(thread: Any, pipeline_state: str) -> str:
    if thread is None:  # no attempt running: starting, between two attempts, or ended
        return "UNASSIGNED" if pipeline_state == "RUNNING" else pipeline_state
    return "RUNNING" if thread.is_alive() else "FINISHED"


def _round(v: float | None) -> float | None:
    return None if v is None else round(v, 3)
