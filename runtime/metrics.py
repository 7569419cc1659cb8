"""Counters for the progress display and the service: rows per table in and out, checkpoints,
watermarks, dead-lettered records.  Each subtask writes only its own counters (no locks on the hot path); readers sum."""
from __future__ import annotations

import time
from collections import defaultdict
from dataclasses import dataclass, field


@dataclass
class CheckpointInfo:
    checkpoint_id: int
    completed_at: float
    duration_s: float
    savepoint: str | None = None


@dataclass
class PipelineMetrics:
    parallelism: int
    started_at: float = field(default_factory=time.time)
    rows_in: list[defaultdict[str, int]] = field(default_factory=list)
    rows_out: list[defaultdict[str, int]] = field(default_factory=list)
    last_checkpoint: CheckpointInfo | None = None
    checkpoints_completed: int = 0
    watermark_ms: int | None = None
    restored_from: int | None = None
    #: records sent to the dead letters (tolerated or skipped by id) since the run started
    dead_letters: int = 0
    #: connector metrics: name -> (how to combine, reporter -> value)
    gauges: dict[str, tuple[str, dict[str, float]]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.rows_in:
            self.rows_in = [defaultdict(int) for _ in range(self.parallelism)]
            self.rows_out = [defaultdict(int) for _ in range(self.parallelism)]

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
