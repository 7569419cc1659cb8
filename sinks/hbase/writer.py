"""The HBase writer: batches into a write-ahead-log segment at the barrier (exactly-once), or
straight into Thrift mutations (at-least-once), each with a timestamp of its own."""
from __future__ import annotations

import logging
import os
import time
from typing import Any

import numpy as np

from runtime.batch import ChangeBatch
from runtime.schema import SchemaChange
from runtime.sink import Committable, SinkWriter, WriterContext
from runtime.wal import WriteAheadLog
from sinks.hbase.committer import Applier
from sinks.hbase.config import HBaseSinkConfig


log = logging.getLogger(__name__)


def wal_root(context: WriterContext) -> str:
    """Where this pipeline's segments live (next to its checkpoints)."""
    return os.path.join(context.state_dir, "wal", context.pipeline, "hbase")


class CellClock:
    """Cell timestamps of a writer.  The batches prepared together (one checkpoint's, or one
    at-least-once flush) get ``base, base + 1, ...`` in order, with

        base = max(largest change version among them, last timestamp + 1)

    so a key's later change always lands above its earlier one, and a replay of a segment
    (its base is stored with it) lands on the same cells.  When the source gives no versions,
    and always with ``clock=True`` (at-least-once: changes written again after a crash are
    grouped differently, and must land above what the failed run wrote), the clock
    (milliseconds since the epoch) stands in for them.  The last timestamp is part of the
    writer's checkpoint state."""

    def __init__(self, last: int = 0, clock: bool = False):
        self.last = last
        self.clock = clock

    def reserve(self, batches: list[ChangeBatch]) -> int:
        top = int(time.time() * 1000) if self.clock else 0
        for b in batches:
            if b.versions is None:
                top = max(top, int(time.time() * 1000))
            elif len(b):
                top = max(top, int(np.max(np.asarray(b.versions))))
        base = max(top, self.last + 1)
        self.last = base + max(len(batches), 1) - 1
        return base


class HBaseSinkWriter(SinkWriter):
    """Writes the batches of one subtask.

    * exactly-once: keeps the batches of the current checkpoint in memory; at the barrier it
      stores them as one WAL segment, and the committable names it with its base timestamp.
      Nothing reaches HBase before the committer applies it.
    * at-least-once: writes as soon as ``batch-size`` rows are buffered and the rest at the
      barrier; after a crash the changes since the last checkpoint are written again.
    """

    def __init__(self, config: HBaseSinkConfig, context: WriterContext,
                 applier: Applier | None, state: dict[str, Any] | None):
        self.config = config
        self.context = context
        self._applier = applier
        self._clock = CellClock(int((state or {}).get("last_timestamp", 0)),
                                clock=applier is not None)
        self._pending: list[ChangeBatch] = []
        self._pending_rows = 0
        self._wal = WriteAheadLog(wal_root(context))

    def write(self, batch: ChangeBatch) -> None:
        if not len(batch):
            return
        self._pending.append(batch)
        self._pending_rows += len(batch)
        if self._applier is not None and self._pending_rows >= self.config.batch_size:
            self._flush()

    def write_schema_change(self, change: SchemaChange) -> None:
        # New and changed columns reach the table with the first batch of the new schema.
        if change.kind in ("truncate_table", "drop_table"):
            log.warning("hbase: %s of %s is not applied: the table keeps its rows",
                        change.kind.replace("_", " "), change.table)

    def prepare_commit(self, checkpoint_id: int) -> list[Committable]:
        if self._applier is not None:
            self._flush()
            return []
        if not self._pending:
            return []
        ctx = self.context
        base = self._clock.reserve(self._pending)
        name = f"{ctx.attempt}-{ctx.subtask:03d}-{checkpoint_id:09d}"
        info = self._wal.write_segment(name, self._pending)
        self._pending, self._pending_rows = [], 0
        if info["segment"] is None:
            return []
        return [{"segment": info["segment"], "rows": info["rows"], "timestamp": base}]

    def snapshot_state(self, checkpoint_id: int) -> dict[str, Any]:
        return {"last_timestamp": self._clock.last}

    def _flush(self) -> None:
        if self._pending and self._applier is not None:
            self._applier.apply(self._pending, self._clock.reserve(self._pending))
        self._pending, self._pending_rows = [], 0

    def close(self) -> None:
        self._pending = []
        if self._applier is not None:
            self._applier.close()
