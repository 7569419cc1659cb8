"""Applying change batches to HBase at a timestamp, and the committer that applies
write-ahead-log segments once their checkpoint is durable."""
from __future__ import annotations

import logging
import os
from collections.abc import Iterable

import numpy as np
import pyarrow as pa

from runtime.batch import DELETE, ChangeBatch
from runtime.errors import BadRecordError
from runtime.sink import CommitContext, Committable, Committer
from runtime.wal import WriteAheadLog
from sinks.hbase.client import BatchMutation, HBaseClient, Mutation
from sinks.hbase.config import HBaseSinkConfig
from sinks.hbase.types import cell_values, rowkeys

log = logging.getLogger(__name__)


def last_per_key(keys: list[bytes]) -> np.ndarray | None:
    """Positions of the last change of each rowkey, in order; None when all are unique."""
    n = len(keys)
    table = pa.table({"k": pa.array(keys, pa.binary()),
                      "i": pa.array(np.arange(n, dtype=np.int64))})
    last = table.group_by("k", use_threads=False).aggregate([("i", "max")])
    if last.num_rows == n:
        return None
    return np.sort(last.column("i_max").to_numpy())


class Applier:
    """Writes batches to their HBase tables.  Thread-confined."""

    def __init__(self, config: HBaseSinkConfig):
        self.config = config
        self.client = HBaseClient(config)

    def apply(self, batches: Iterable[ChangeBatch], timestamp: int) -> int:
        """Apply each batch (a run of one table) in order, the i-th at ``timestamp + i``, so a
        later change of a key always has the higher timestamp.  Returns the next free
        timestamp."""
        for batch in batches:
            if len(batch):
                self._apply_batch(batch, timestamp)
                timestamp += 1
        return timestamp

    def _apply_batch(self, batch: ChangeBatch, timestamp: int) -> None:
        cfg, schema = self.config, batch.schema
        if not schema.primary_key:
            raise BadRecordError(f"hbase: table {schema.table} has no primary key: rowkeys "
                                 "need one")
        table = cfg.table_for(schema.table)
        key_cols = set(schema.primary_key)
        value_cols = [c for c in schema.columns if c.name not in key_cols]
        families = sorted({cfg.column_family} | {cfg.family_of(c.name) for c in value_cols})
        self.client.ensure_table(table, families)
        rows = pa.Table.from_batches([batch.arrow()])
        keys = rowkeys(rows, schema)
        deletes = np.frombuffer(batch.ops.encode("ascii"), dtype=np.uint8) == ord(DELETE)
        keep = last_per_key(keys)
        if keep is not None:  # only the last change of a row matters
            rows = rows.take(pa.array(keep))
            keys = [keys[i] for i in keep]
            deletes = deletes[keep]
        qualifiers = [f"{cfg.family_of(c.name)}:{c.name}".encode() for c in value_cols]
        values = [cell_values(rows.column(c.name).combine_chunks(), c.type, cfg.value_encoding)
                  for c in value_cols]
        delete_row = [Mutation(isDelete=True, column=f.encode()) for f in families]
        out: list = []
        for i, (key, cells) in enumerate(zip(keys, zip(*values) if values else [()] * len(keys))):
            if deletes[i]:
                out.append(BatchMutation(key, delete_row))
            else:
                # a NULL deletes the column, so no older value of it stays visible
                out.append(BatchMutation(key, [
                    Mutation(column=q, value=v) if v is not None
                    else Mutation(isDelete=True, column=q)
                    for q, v in zip(qualifiers, cells)]))
            if len(out) >= cfg.batch_size:
                self.client.mutate(table, out, timestamp)
                out = []
        if out:
            self.client.mutate(table, out, timestamp)

    def close(self) -> None:
        self.client.close()


class HBaseCommitter(Committer):
    """Applies the WAL segments named by committables ``{"segment", "rows", "timestamp"}``.

    Idempotent: a segment is deleted only after it was applied completely, so a missing
    segment was applied before; re-applying an existing one writes the same cells at the same
    timestamps, which changes nothing.  Never returns "not yet".
    """

    def __init__(self, config: HBaseSinkConfig):
        self.config = config
        self._applier: Applier | None = None

    def commit(self, committables: list[Committable], context: CommitContext) -> list[Committable]:
        for c in committables:
            path = c.get("segment")
            if not path:
                continue
            if not os.path.isdir(path):
                log.debug("hbase: segment %s was applied before", path)
                continue
            if self._applier is None:
                self._applier = Applier(self.config)
            self._applier.apply(WriteAheadLog.read_segment(path), int(c["timestamp"]))
            WriteAheadLog.delete_segment(path)
        return []

    def close(self) -> None:
        if self._applier is not None:
            self._applier.close()
