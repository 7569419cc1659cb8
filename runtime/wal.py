"""A write-ahead log of change batches in checkpoint storage, for sinks without transactions.

At the barrier a writer puts what it buffered since the last barrier into one *segment* and
returns the segment's path as (part of) its committable.  The committer applies the segment
only after the checkpoint is durable, with idempotent writes, and deletes it once applied.
After a crash, the restored checkpoint names the segments still to apply; segments written
after it are garbage (``discard_except``).

A segment is a folder with Arrow IPC files (the changelog form of the batches plus the
``_version`` column when they carry versions), written into a temporary folder, made durable
and renamed into place: a segment exists completely or not at all.  It lives wherever the
checkpoint storage does (a local folder or HDFS, through :mod:`runtime.fs`).  Order is kept
within a table, which is the order that matters (per-key order).
"""
from __future__ import annotations

import json
import posixpath
from collections.abc import Iterable

import pyarrow as pa
import pyarrow.ipc as ipc

from runtime.batch import OP_COLUMN, TS_COLUMN, ChangeBatch
from runtime.fs import filesystem, normpath
from runtime.schema import TableSchema

VERSION_COLUMN = "_version"
_SCHEMA_KEY = b"hub.table_schema"


class WriteAheadLog:
    """Segments under ``root`` (e.g. ``<WriterContext.state_dir>/wal/<pipeline>``)."""

    def __init__(self, root: str):
        self.root = normpath(root)
        self.fs = filesystem(self.root)

    def _join(self, *parts: str) -> str:
        return posixpath.join(self.root, *parts)

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
        final = self._join(name)
        tmp = final + ".tmp"
        self.fs.rmtree(tmp)
        self.fs.makedirs(tmp)
        rows = 0
        for i, run in enumerate(runs):
            tables = [_with_version(b) for b in run]
            meta = {_SCHEMA_KEY: json.dumps(run[0].schema.to_dict()).encode()}
            out = self.fs.create(posixpath.join(tmp, f"{i:04d}.arrow"))
            try:
                with ipc.new_file(pa.PythonFile(out, mode="w"), tables[0].schema.with_metadata(meta)) as w:
                    for t in tables:
                        w.write_table(t.replace_schema_metadata(meta))
            except BaseException:
                out.abort()
                raise
            out.close()  # durable (fsync locally; closed and acknowledged on HDFS)
            rows += sum(len(b) for b in run)
        self.fs.sync_dir(tmp)
        self.fs.rmtree(final)  # a leftover of an interrupted earlier attempt of this segment
        if not self.fs.rename(tmp, final):
            raise OSError(f"write-ahead log: could not rename {tmp} to {final}")
        self.fs.sync_dir(self.root)
        return {"segment": final, "rows": rows}

    @staticmethod
    def read_segment(path: str) -> list[ChangeBatch]:
        """The batches of a segment; per table in write order."""
        fs = filesystem(path)
        out: list[ChangeBatch] = []
        for st in sorted(fs.listdir(path), key=lambda s: s.name):
            reader = ipc.open_file(pa.BufferReader(fs.read_bytes(st.path)))
            schema = TableSchema.from_dict(json.loads(reader.schema.metadata[_SCHEMA_KEY]))
            out.append(_from_table(schema, reader.read_all()))
        return out

    @staticmethod
    def delete_segment(path: str) -> None:
        filesystem(path).rmtree(path)

    def discard_except(self, keep: Iterable[str]) -> list[str]:
        """Delete every segment not in ``keep`` (those written after the restored checkpoint,
        and leftovers of interrupted writes).  Returns what was deleted."""
        keep_set = {normpath(k) for k in keep if k}
        try:
            entries = self.fs.listdir(self.root)
        except FileNotFoundError:
            return []
        gone = []
        for st in entries:
            if normpath(st.path) not in keep_set:
                self.fs.rmtree(st.path)
                gone.append(st.path)
        return gone


def _with_version(b: ChangeBatch) -> pa.Table:
    t = b.changelog_table()
    if b.versions is not None:
        t = t.append_column(VERSION_COLUMN, pa.array(b.versions, type=pa.int64()))
    return t


def _from_table(schema: TableSchema, table: pa.Table) -> ChangeBatch:
    batches = table.select(list(schema.names)).combine_chunks().to_batches()
    arrow = (batches[0].cast(schema.arrow_schema) if batches
             else pa.RecordBatch.from_pylist([], schema=schema.arrow_schema))
    ops = "".join(table.column(OP_COLUMN).to_pylist())
    versions = (table.column(VERSION_COLUMN).to_numpy()
                if VERSION_COLUMN in table.column_names else None)
    return ChangeBatch(schema, ops, arrow=arrow, ts_ms=table.column(TS_COLUMN).combine_chunks(),
                       versions=versions)
