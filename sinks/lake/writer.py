"""The lake-table writer: stages snapshot reads and inserts as the table's data files, every
other change in write-ahead-log segments."""
from __future__ import annotations

import numpy as np
import pyarrow as pa

from runtime.batch import ChangeBatch
from runtime.fs import is_url
from runtime.sink import Committable, WriterContext
from runtime.wal import WalSinkWriter
from sinks.lake.staging import INSERT_CODES, Layout, Stager, staging_root


class LakeSinkWriter(WalSinkWriter):
    """Writes the batches of one subtask, always exactly once: nothing reaches a table before
    the committer commits the checkpoint.

    * With a ``layout`` (see :mod:`sinks.lake.staging`) and a local state folder, the
      snapshot reads and inserts of a table it says is stageable are written as the table's
      data files as they come (one open file per table); the committer adds them to the
      table as they are when their keys collide with nothing, else merges their rows.  Where
      the format merges staged rows back whenever a checkpoint has other changes of the table
      (:meth:`~sinks.lake.staging.Layout.merges_mixed`), a table that had such changes in
      this writer's checkpoint, or in its previous one (a change stream), has its inserts
      written to the segment instead, from the batch bringing such a change on.
    * Every other change goes to the checkpoint's write-ahead-log segment (see
      :class:`~runtime.wal.WalSinkWriter`).

    Committables name their checkpoint: ``{"segment", "rows", "checkpoint"}`` for the segment,
    ``{"staged": [StagedFile dicts], "rows", "checkpoint"}`` for the staged files.  Schema
    changes reach the committer with the batches (each segment file and side record holds
    the schema of its rows); truncating or dropping a table is not applied (the lake table
    keeps its rows), with a warning."""

    container = "lake table"

    def __init__(self, context: WriterContext, sink_name: str, layout: Layout | None = None,
                 target_file_size: int = 128 << 20):
        self.sink_name = sink_name  # the segments' folder: the committer's
        super().__init__(context, exactly_once=True, flush_rows=0)
        if is_url(context.state_dir):  # side records are local files: a local state folder
            layout = None
        self._layout = layout
        self._stager = None if layout is None else Stager(
            layout, staging_root(context.state_dir, context.pipeline, sink_name),
            target_file_size)
        #: tables with changes besides inserts in this checkpoint, and in the previous one
        self._mixed: set[str] = set()
        self._mixed_before: set[str] = set()

    def write(self, batch: ChangeBatch) -> None:
        if not len(batch):
            return
        if self._stager is None or not self._layout.stageable(batch.schema):
            super().write(batch)
            return
        codes = np.frombuffer(batch.ops.encode("ascii"), dtype=np.uint8)
        staged = np.isin(codes, INSERT_CODES)
        table = batch.table
        if not staged.all():
            self._mixed.add(table)
        if self._layout.merges_mixed() and (table in self._mixed or table in self._mixed_before):
            super().write(batch)  # staged, these would be merged back: written twice
            return
        batch = self._versions.stamp(batch)
        if staged.all():
            self._stager.add(batch, codes)
        elif not staged.any():
            super().write(batch)
        else:  # source order between the two parts is kept by the versions
            self._stager.add(_filter(batch, staged), codes[staged])
            super().write(_filter(batch, ~staged))

    def prepare_commit(self, checkpoint_id: int) -> list[Committable]:
        out = [dict(c, checkpoint=checkpoint_id) for c in super().prepare_commit(checkpoint_id)]
        self._mixed_before, self._mixed = self._mixed, set()
        if self._stager is not None:
            files = self._stager.finish()
            if files:
                out.append({"staged": [f.to_dict() for f in files],
                            "rows": sum(f.rows for f in files), "checkpoint": checkpoint_id})
        return out

    def close(self) -> None:
        super().close()
        if self._stager is not None:
            self._stager.abort()  # records after the last barrier: never committed


def _filter(batch: ChangeBatch, mask: np.ndarray) -> ChangeBatch:
    """The changes of ``batch`` where ``mask``, with their event times and versions."""
    codes = np.frombuffer(batch.ops.encode("ascii"), dtype=np.uint8)[mask]
    return ChangeBatch(batch.schema, codes.tobytes().decode("ascii"),
                       arrow=batch.arrow().filter(pa.array(mask)),
                       ts_ms=batch.ts_ms_array().filter(pa.array(mask)),
                       versions=np.asarray(batch.versions, dtype=np.int64)[mask])
