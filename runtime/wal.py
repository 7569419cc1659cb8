"""A write-ahead log of change batches in checkpoint storage, for sinks without transactions.

At the barrier a writer puts what it buffered since the last barrier into one *segment* and
returns the segment's path as (part of) its committable.  The committer applies the segment
only after the checkpoint is durable, with idempotent writes, and deletes it once applied.
After a crash, the restored checkpoint names the segments still to apply; segments written
after it are garbage (``discard_except``).

A segment is a folder with one Arrow IPC file per table (its changelog form plus the
``_version`` column when the batches carry versions), written, fsynced and renamed into place:
a segment exists completely or not at all.  Order is kept within a table, which is the order
that matters (per-key order).
"""
from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterable

import pyarrow as pa
import pyarrow.ipc as ipc

from runtime.batch import OP_COLUMN, TS_COLUMN, ChangeBatch
from runtime.schema import TableSchema

VERSION_COLUMN = "_version"
_SCHEMA_KEY = b"hub.table_schema"


def _fsync_dir(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class WriteAheadLog:
    """Segments under ``root`` (e.g. ``<WriterContext.state_dir>/wal/<pipeline>``)."""

    def __init__(self, root: str):
        self.root = os.path.abspath(root)

    def write_segment(self, name: str, batches: Iterable[ChangeBatch]) -> dict:
        """Durably store ``batches`` as segment ``name`` (unique per writer and checkpoint).
        Returns ``{"segment": path, "rows": n}``; empty input writes nothing (``path`` None)."""
        # One file per run of batches of one table and schema, numbered in order.
        runs: list[list[ChangeBatch]] = []
        index: dict[str, int] = {}
        for b in batches:
            if not len(b):
                continue
            i = index.get(b.table)
            if i is None or runs[i][-1].schema != b.schema:
                index[b.table] = len(runs)
                runs.append([b])
            else:
                runs[i].append(b)
        if not runs:
            return {"segment": None, "rows": 0}
        final = os.path.join(self.root, name)
        tmp = final + ".tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        os.makedirs(tmp)
        rows = 0
        for i, run in enumerate(runs):
            path = os.path.join(tmp, f"{i:04d}.arrow")
            tables = [_with_version(b) for b in run]
            meta = {_SCHEMA_KEY: json.dumps(run[0].schema.to_dict()).encode()}
            schema = tables[0].schema.with_metadata(meta)
            with pa.OSFile(path, "wb") as sink, ipc.new_file(sink, schema) as writer:
                for t in tables:
                    writer.write_table(t.replace_schema_metadata(meta))
            rows += sum(len(b) for b in run)
            with open(path, "rb+") as f:
                os.fsync(f.fileno())
        _fsync_dir(tmp)
        shutil.rmtree(final, ignore_errors=True)
        os.replace(tmp, final)
        _fsync_dir(self.root)
        return {"segment": final, "rows": rows}

    @staticmethod
    def read_segment(path: str) -> list[ChangeBatch]:
        """The batches of a segment; per table in write order."""
        out: list[ChangeBatch] = []
        for name in sorted(os.listdir(path)):
            with pa.memory_map(os.path.join(path, name)) as source:
                reader = ipc.open_file(source)
                schema = TableSchema.from_dict(json.loads(reader.schema.metadata[_SCHEMA_KEY]))
                table = reader.read_all()
            out.append(_from_table(schema, table))
        return out

    @staticmethod
    def delete_segment(path: str) -> None:
        shutil.rmtree(path, ignore_errors=True)

    def discard_except(self, keep: Iterable[str]) -> list[str]:
        """Delete every segment not in ``keep`` (those written after the restored checkpoint,
        and leftovers of interrupted writes).  Returns what was deleted."""
        keep_set = {os.path.abspath(k) for k in keep if k}
        if not os.path.isdir(self.root):
            return []
        gone = []
        for name in os.listdir(self.root):
            path = os.path.join(self.root, name)
            if path not in keep_set:
                shutil.rmtree(path, ignore_errors=True)
                gone.append(path)
        return gone


def _with_version(b: ChangeBatch) -> pa.Table:
    t = b.changelog_table()
    if b.versions is not None:
        t = t.append_column(VERSION_COLUMN, pa.array(b.versions, type=pa.int64()))
    return t


def _from_table(schema: TableSchema, table: pa.Table) -> ChangeBatch:
    names = list(schema.names)
    rb = table.select(names).combine_chunks().to_batches()
    arrow = rb[0] if rb else pa.RecordBatch.from_pylist([], schema=schema.arrow_schema)
    ops = "".join(table.column(OP_COLUMN).to_pylist())
    versions = (table.column(VERSION_COLUMN).to_numpy()
                if VERSION_COLUMN in table.column_names else None)
    return ChangeBatch(schema, ops, arrow=arrow.cast(schema.arrow_schema) if rb else arrow,
                       ts_ms=table.column(TS_COLUMN).combine_chunks(), versions=versions)
