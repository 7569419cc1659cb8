"""The Elasticsearch writer: batches into a write-ahead-log segment at the barrier
(exactly-once), or straight into bulk requests (at-least-once)."""
from __future__ import annotations

import copy
import logging
import os
import time

import numpy as np

from runtime.batch import ChangeBatch
from runtime.schema import SchemaChange
from runtime.sink import Committable, SinkWriter, WriterContext
from runtime.wal import WriteAheadLog
from sinks.elasticsearch.committer import Applier
from sinks.elasticsearch.config import ElasticsearchSinkConfig


log = logging.getLogger(__name__)


def wal_root(context: WriterContext) -> str:
    """Where this pipeline's segments live (next to its checkpoints)."""
    return os.path.join(context.state_dir, "wal", context.pipeline, "elasticsearch")


class VersionClock:
    """Versions for batches whose source gives none: nanoseconds since the epoch when the
    batch reaches the writer, strictly increasing per writer.  Monotonic per key across
    checkpoints, restarts and changes of parallelism (the clock only moves forward), and fixed
    once written into a segment, so replays reuse them."""

    def __init__(self) -> None:
        self._last = 0

    def stamp(self, batch: ChangeBatch) -> ChangeBatch:
        if batch.versions is not None:
            return batch
        n = len(batch)
        base = max(time.time_ns(), self._last + 1)
        self._last = base + n - 1
        stamped = copy.copy(batch)  # the source may hold on to its batch: don't change it
        stamped.versions = np.arange(base, base + n, dtype=np.int64)
        return stamped


class ElasticsearchSinkWriter(SinkWriter):
    """Writes the batches of one subtask.

    * exactly-once: keeps the batches of the current checkpoint in memory and, at the barrier,
      stores them as one WAL segment; the committable names it.  Nothing reaches
      Elasticsearch before the committer applies it.
    * at-least-once: sends bulk requests as soon as ``bulk-max-actions`` rows are buffered,
      and the rest at the barrier; after a crash the changes since the last checkpoint are
      sent again, which versions make harmless.
    """

    def __init__(self, config: ElasticsearchSinkConfig, context: WriterContext,
                 applier: Applier | None):
        self.config = config
        self.context = context
        self._applier = applier
        self._clock = VersionClock()
        self._pending: list[ChangeBatch] = []
        self._pending_rows = 0
        self._wal = WriteAheadLog(wal_root(context))

    @property
    def exactly_once(self) -> bool:
        return self.config.delivery == "exactly-once"

    def write(self, batch: ChangeBatch) -> None:
        if not len(batch):
            return
        self._pending.append(self._clock.stamp(batch))
        self._pending_rows += len(batch)
        if not self.exactly_once and self._pending_rows >= self.config.bulk_max_actions:
            self._flush()

    def write_schema_change(self, change: SchemaChange) -> None:
        # New and changed columns reach the index with the first batch of the new schema.
        if change.kind in ("truncate_table", "drop_table"):
            log.warning("elasticsearch: %s of %s is not applied: the index keeps its rows",
                        change.kind.replace("_", " "), change.table)

    def prepare_commit(self, checkpoint_id: int) -> list[Committable]:
        if not self.exactly_once:
            self._flush()
            return []
        ctx = self.context
        name = f"{ctx.attempt}-{ctx.subtask:03d}-{checkpoint_id:09d}"
        info = self._wal.write_segment(name, self._pending)
        self._pending, self._pending_rows = [], 0
        if info["segment"] is None:
            return []
        return [{"segment": info["segment"], "rows": info["rows"]}]

    def _flush(self) -> None:
        if self._pending and self._applier is not None:
            self._applier.apply(self._pending)
        self._pending, self._pending_rows = [], 0

    def close(self) -> None:
        self._pending = []
        if self._applier is not None:
            self._applier.close()
