"""Counters for the progress display and the service: rows per table in and out (in also per
op), event time and wall time of the last emitted change, schema changes, checkpoints
(completed, failed, a short history), watermarks, dead-lettered records, connector gauges.

Each subtask writes only its own slots (no locks on the hot path: one batch costs a few dict
updates); readers (the progress display, the service's Prometheus collector, the status API)
take consistent-enough snapshots by reading them, never by asking the subtasks."""
from __future__ import annotations

import time
from collections import defaultdict, deque
from dataclasses import dataclass, field

from runtime.batch import OPS

#: completed checkpoints remembered for the service's checkpoint history
HISTORY = 50


@dataclass
class CheckpointInfo:
    checkpoint_id: int
    completed_at: float
    duration_s: float
    savepoint: str | None = None


def count_ops(ops: str) -> list[tuple[str, int]]:
    """``(op, count)`` of a batch's op string; one C-level scan when all ops are alike (a
    snapshot chunk, an insert-only stream), one per op otherwise."""
    if not ops:
        return []
    first = ops[0]
    n = ops.count(first)
    if n == len(ops):
        return [(first, n)]
    return [(op, c) for op in OPS if (c := ops.count(op))]


@dataclass
class PipelineMetrics:
    parallelism: int
    started_at: float = field(default_factory=time.time)
    rows_in: list[defaultdict[str, int]] = field(default_factory=list)
    rows_out: list[defaultdict[str, int]] = field(default_factory=list)
    #: per source subtask: (table, op) -> rows emitted
    ops_in: list[defaultdict[tuple[str, str], int]] = field(default_factory=list)
    #: per sink subtask: (table, op) -> rows the sink's own writer received (after transforms,
    #: under routed table names: ``WriterContext.record_out``)
    ops_out: list[defaultdict[tuple[str, str], int]] = field(default_factory=list)
    #: per source subtask: event time (ms) of the newest change of its last emitted batch
    last_event_ts_ms: list[int | None] = field(default_factory=list)
    #: per source subtask: wall time (s) it last emitted a batch
    last_event_at: list[float | None] = field(default_factory=list)
    #: per source subtask: wall time (s) up to which it last said it emitted everything
    #: (``ReaderOutput.caught_up``)
    caught_up_at: list[float | None] = field(default_factory=list)
    #: per source subtask: schema changes emitted
    schema_changes: list[int] = field(default_factory=list)
    checkpoints_completed: int = 0
    #: checkpoints that timed out or could not be stored
    checkpoints_failed: int = 0
    #: the newest completed checkpoints, oldest first
    checkpoint_history: deque[CheckpointInfo] = field(
        default_factory=lambda: deque(maxlen=HISTORY))
    watermark_ms: int | None = None
    restored_from: int | None = None
    #: records sent to the dead letters (tolerated or skipped by id) since the run started
    dead_letters: int = 0
    #: connector metrics: name -> (how to combine, reporter -> value)
    gauges: dict[str, tuple[str, dict[str, float]]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        n = self.parallelism
        if not self.rows_in:
            self.rows_in = [defaultdict(int) for _ in range(n)]
            self.rows_out = [defaultdict(int) for _ in range(n)]
        self.ops_in = self.ops_in or [defaultdict(int) for _ in range(n)]
        self.ops_out = self.ops_out or [defaultdict(int) for _ in range(n)]
        self.last_event_ts_ms = self.last_event_ts_ms or [None] * n
        self.last_event_at = self.last_event_at or [None] * n
        self.caught_up_at = self.caught_up_at or [None] * n
        self.schema_changes = self.schema_changes or [0] * n

    @property
    def last_checkpoint(self) -> CheckpointInfo | None:
        """The newest completed checkpoint; setting it records it in the history."""
        return self.checkpoint_history[-1] if self.checkpoint_history else None

    @last_checkpoint.setter
    def last_checkpoint(self, info: CheckpointInfo | None) -> None:
        if info is not None:
            self.checkpoint_history.append(info)

    def record_in(self, subtask: int, table: str, ops: str, max_ts: int | None) -> None:
        """Source subtask ``subtask`` emitted a batch of ``table`` (called by its thread
        only)."""
        self.rows_in[subtask][table] += len(ops)
        per_op = self.ops_in[subtask]
        for op, n in count_ops(ops):
            per_op[(table, op)] += n
        if max_ts is not None:
            self.last_event_ts_ms[subtask] = max_ts
        self.last_event_at[subtask] = time.time()

    def record_out(self, subtask: int, table: str, ops: str) -> None:
        """The sink's writer of subtask ``subtask`` received a batch of ``table`` (after the
        operators chained before it; called by that subtask's thread only, once per
        batch)."""
        self.rows_out[subtask][table] += len(ops)
        per_op = self.ops_out[subtask]
        for op, n in count_ops(ops):
            per_op[(table, op)] += n

    def record_caught_up(self, subtask: int, at_s: float) -> None:
        """Source subtask ``subtask`` emitted everything the source held up to ``at_s``."""
        self.caught_up_at[subtask] = at_s

    def checkpoint_failed(self) -> None:
        self.checkpoints_failed += 1

    def set_gauge(self, reporter: str, name: str, value: float, agg: str = "sum") -> None:
        entry = self.gauges.get(name)
        if entry is None:
            entry = self.gauges[name] = (agg, {})
        entry[1][reporter] = value

    def gauge_values(self) -> dict[str, float]:
        """Each gauge combined over its reporters."""
        fns = {"sum": sum, "max": max, "min": min}
        return {name: fns.get(agg, sum)(list(values.values()))
                for name, (agg, values) in sorted(self.gauges.items()) if values}

    def totals(self) -> dict[str, tuple[int, int]]:
        """table -> (rows in, rows out), summed over subtasks."""
        out: dict[str, list[int]] = defaultdict(lambda: [0, 0])
        for counters, k in ((self.rows_in, 0), (self.rows_out, 1)):
            for c in counters:
                for table, n in list(c.items()):
                    out[table][k] += n
        return {t: (v[0], v[1]) for t, v in sorted(out.items())}

    def ops_totals(self, side: str = "in") -> dict[tuple[str, str], int]:
        """(table, op) -> rows in (``side`` "in": emitted by the source) or out ("out":
        handed to the sink's writers), summed over subtasks."""
        out: dict[tuple[str, str], int] = defaultdict(int)
        for c in (self.ops_in if side == "in" else self.ops_out):
            for key, n in list(c.items()):
                out[key] += n
        return dict(sorted(out.items()))

    def event_time_lag_s(self, now: float | None = None) -> float | None:
        """Now minus the event time of the newest change emitted (over subtasks that emitted
        any), or minus the newest time a source subtask said it had emitted everything up to
        (a heartbeat on a quiet database), whichever is later: how far behind the source the
        pipeline is; None before the first change or heartbeat."""
        stamps = [t / 1000 for t in list(self.last_event_ts_ms) if t is not None]
        stamps += [t for t in list(self.caught_up_at) if t is not None]
        if not stamps:
            return None
        return max(0.0, (now or time.time()) - max(stamps))

    def idle_s(self, now: float | None = None) -> float | None:
        """Seconds since any source subtask last emitted a batch, None before the first."""
        stamps = [t for t in list(self.last_event_at) if t is not None]
        return None if not stamps else max(0.0, (now or time.time()) - max(stamps))
