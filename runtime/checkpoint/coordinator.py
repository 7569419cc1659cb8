"""The checkpoint coordinator: triggers checkpoints, collects acknowledgements, stores
completed checkpoints durably and only then has the sink's committer commit.

It holds no thread of its own: the executor calls it from its control loop, and it talks to
subtasks through the ``trigger`` callback and the acks it is given, all plain data.

Guarantees:

* At most one checkpoint is in flight.
* A checkpoint is stored (atomically) only once every source and sink subtask acknowledged it;
  the committer sees its committables only after that.
* Committables never get lost: those of a checkpoint that was aborted (timeout), and those the
  committer returned as "not yet", are carried into the next checkpoint that completes.
"""
from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from runtime.checkpoint.storage import CheckpointStorage
from runtime.errors import CheckpointError, HubError
from runtime.faults import crash_point
from runtime.metrics import CheckpointInfo, PipelineMetrics
from runtime.sink import CommitContext, Committer
from runtime.watermark import WatermarkValue, merge_min

log = logging.getLogger("hub.checkpoint")

COMMIT_ATTEMPTS = 5


@dataclass
class PendingCheckpoint:
    checkpoint_id: int
    started: float
    enumerator_state: dict[str, Any]
    savepoint: str | None = None
    final: bool = False
    source_acks: dict[int, list[dict]] = field(default_factory=dict)
    sink_acks: dict[int, Any] = field(default_factory=dict)
    on_complete: list[Callable[[str], None]] = field(default_factory=list)


class CheckpointCoordinator:
    def __init__(self, pipeline: str, storage: CheckpointStorage, committer: Committer,
                 num_sources: int, num_sinks: int, interval_s: float, timeout_s: float,
                 metrics: PipelineMetrics, next_id: int = 1,
                 carried: list[dict] | None = None):
        self.pipeline = pipeline
        self.storage = storage
        self.committer = committer
        self.num_sources, self.num_sinks = num_sources, num_sinks
        self.interval_s = interval_s
        self.timeout_s = timeout_s
        self.metrics = metrics
        self.next_id = next_id
        self.pending: PendingCheckpoint | None = None
        self.carried: list[dict] = list(carried or [])
        self.last_trigger = time.monotonic()
        self.last_completed: int | None = None

    # -- triggering ---------------------------------------------------------------------------
    def due(self) -> bool:
        return self.pending is None and time.monotonic() - self.last_trigger >= self.interval_s

    def trigger(self, enumerator_state: dict[str, Any], savepoint: str | None = None,
                final: bool = False) -> PendingCheckpoint:
        """Start checkpoint ``next_id``; the caller sends the trigger to every source."""
        if self.pending is not None:
            raise HubError("a checkpoint is already in progress")
        self.pending = PendingCheckpoint(self.next_id, time.monotonic(), enumerator_state,
                                         savepoint, final)
        self.next_id += 1
        self.last_trigger = time.monotonic()
        return self.pending

    def check_timeout(self) -> None:
        """Abort the pending checkpoint when it ran out of time (not the final one)."""
        p = self.pending
        if p is None or p.final or time.monotonic() - p.started < self.timeout_s:
            return
        log.warning("checkpoint %d timed out after %gs and is aborted; its prepared data "
                    "will be committed with the next one", p.checkpoint_id, self.timeout_s)
        for committables, *_ in p.sink_acks.values():
            self.carried.extend(committables)
        self.pending = None

    # -- acknowledgements ---------------------------------------------------------------------
    def ack_source(self, subtask: int, checkpoint_id: int, splits: list[dict]) -> bool:
        p = self.pending
        if p is None or p.checkpoint_id != checkpoint_id:
            return False  # a late ack of an aborted checkpoint: the splits are stale
        p.source_acks[subtask] = splits
        return self._maybe_complete()

    def ack_sink(self, subtask: int, checkpoint_id: int, committables: list[dict],
                 state: dict | None, watermark_ms: WatermarkValue) -> bool:
        p = self.pending
        if p is None or p.checkpoint_id != checkpoint_id:
            # late ack of an aborted checkpoint: what it prepared must still be committed
            self.carried.extend(committables)
            return False
        p.sink_acks[subtask] = (committables, state, watermark_ms)
        return self._maybe_complete()

    def _maybe_complete(self) -> bool:
        p = self.pending
        assert p is not None
        if len(p.source_acks) < self.num_sources or len(p.sink_acks) < self.num_sinks:
            return False
        self.pending = None
        self._complete(p)
        return True

    def _complete(self, p: PendingCheckpoint) -> None:
        committables = list(self.carried)
        writers = []
        for i in range(self.num_sinks):
            c, state, _ = p.sink_acks[i]
            committables.extend(c)
            writers.append(state)
        merged = merge_min([p.sink_acks[i][2] for i in range(self.num_sinks)])
        watermark = merged if isinstance(merged, int) else None
        data = {
            "version": 1, "pipeline": self.pipeline, "checkpoint_id": p.checkpoint_id,
            "timestamp_ms": int(time.time() * 1000), "savepoint": p.savepoint, "final": p.final,
            "source": {"enumerator": p.enumerator_state,
                       "readers": [p.source_acks[i] for i in range(self.num_sources)]},
            "sink": {"committables": committables, "writers": writers},
            "watermark_ms": watermark,
        }
        try:
            path = self.storage.store(p.checkpoint_id, data)
            if p.savepoint:
                path = self.storage.store(p.checkpoint_id, data, savepoint=p.savepoint)
        except OSError as exc:
            raise CheckpointError(f"checkpoint {p.checkpoint_id}: can't store it in "
                                  f"{self.storage.root}: {exc}") from exc
        self.carried = []
        self.last_completed = p.checkpoint_id
        duration = time.monotonic() - p.started
        self.metrics.last_checkpoint = CheckpointInfo(p.checkpoint_id, time.time(), duration,
                                                      p.savepoint)
        self.metrics.checkpoints_completed += 1
        self.metrics.watermark_ms = watermark
        log.debug("checkpoint %d stored in %.3fs", p.checkpoint_id, duration)
        crash_point("checkpoint-stored", p.checkpoint_id)
        # Durable now: make the prepared data visible.
        self.carried = self.commit(committables, p.checkpoint_id, watermark)
        for name, value in self.committer.gauges().items():  # e.g. writes the store refused
            self.metrics.set_gauge("committer", name, value)
        crash_point("checkpoint-committed", p.checkpoint_id)
        for cb in p.on_complete:
            cb(path)

    def commit(self, committables: list[dict], checkpoint_id: int, watermark: int | None,
               recover: bool = False) -> list[dict]:
        """Commit with retries on transient errors; returns the "not yet" committables."""
        ctx = CommitContext(self.pipeline, checkpoint_id, watermark, self.storage.state_dir)
        delay = 0.2
        for attempt in range(1, COMMIT_ATTEMPTS + 1):
            try:
                if recover:
                    return list(self.committer.recover(committables, ctx))
                return list(self.committer.commit(committables, ctx))
            except HubError as exc:
                if not exc.transient or attempt == COMMIT_ATTEMPTS:
                    raise
                log.warning("commit of checkpoint %d failed (%s); retry %d of %d in %.1fs",
                            checkpoint_id, exc, attempt, COMMIT_ATTEMPTS - 1, delay)
                time.sleep(delay)
                delay = min(delay * 2, 5.0)
        return []
