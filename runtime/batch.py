"""Change events and batches: the data that flows between operators.

The unit of transport is a :class:`ChangeBatch`: many events of one table.  A batch holds its
row images either as a list of tuples (what row-oriented sources produce) or as an Arrow
``RecordBatch`` (what columnar sources produce), and converts lazily to the other form when a
consumer asks for it, once.  Nothing here loops over events unless a caller asks for events.
"""
from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from runtime.schema import TableSchema

READ, CREATE, UPDATE, DELETE = "r", "c", "u", "d"
OPS = (READ, CREATE, UPDATE, DELETE)

#: Names of the metadata columns that changelog tables (files sink, print, lake tables in
#: append mode) carry: the op, the event time and the source order (the batch's ``versions``:
#: binlog position, Kafka offset, file offset), which orders the changes of one key without ties.
OP_COLUMN, TS_COLUMN, SEQ_COLUMN = "op", "ts_ms", "seq"


class ChangeEvent:
    """One change of one row (a view; batches are what flows).

    ``after`` is None for deletes, ``before`` is None for inserts and snapshot reads (and for
    updates when the source has no before image).  ``key`` is the primary-key tuple.
    """

    __slots__ = ("op", "table", "before", "after", "key", "ts_ms", "position")

    def __init__(self, op: str, table: str, before: tuple | None, after: tuple | None,
                 key: tuple, ts_ms: int, position: Any = None):
        self.op, self.table, self.before, self.after = op, table, before, after
        self.key, self.ts_ms, self.position = key, ts_ms, position

    def __repr__(self) -> str:
        return (f"ChangeEvent(op={self.op!r}, table={self.table!r}, key={self.key!r}, "
                f"before={self.before!r}, after={self.after!r}, ts_ms={self.ts_ms})")


class ChangeBatch:
    """Change events of one table.

    * ``ops``: a ``str`` with one character per event (``r``, ``c``, ``u``, ``d``).
    * row images: the row *after* the change, or for a delete the row *before* it (so every
      event has a full row, and its key).  Given as ``rows`` (list of tuples in schema column
      order) or ``arrow`` (``pyarrow.RecordBatch`` with ``schema.arrow_schema``).
    * ``before``: optional list (one entry per event, ``None`` allowed) of before images of
      updates, for sources that have them.
    * ``ts_ms``: event time in epoch milliseconds: one ``int`` for the whole batch, or a
      sequence (list, numpy array or Arrow array) with one per event.
    * ``positions``: optional per-event source positions (plain data).
    * ``versions``: optional per-event int64 versions, increasing per key over the life of the
      source (a snapshot read sorts below any later change of its key).  Sinks without
      transactions use them for idempotent, versioned writes (Elasticsearch external
      versions, HBase cell timestamps).
    """

    __slots__ = ("schema", "ops", "_rows", "_arrow", "before", "_ts", "positions", "versions")

    def __init__(self, schema: TableSchema, ops: str, *, rows: list[tuple] | None = None,
                 arrow: pa.RecordBatch | None = None, before: list[tuple | None] | None = None,
                 ts_ms: int | Sequence[int] | np.ndarray | pa.Array = 0,
                 positions: Sequence[Any] | None = None,
                 versions: Sequence[int] | np.ndarray | None = None):
        if rows is None and arrow is None:
            raise ValueError("a ChangeBatch needs rows or arrow")
        self.schema = schema
        self.ops = ops
        self._rows = rows
        self._arrow = arrow
        self.before = before
        self._ts = ts_ms
        self.positions = positions
        self.versions = versions

    # -- construction helpers ---------------------------------------------------------------
    @classmethod
    def of_rows(cls, schema: TableSchema, rows: list[tuple], op: str = CREATE,
                ts_ms: int | Sequence[int] = 0) -> ChangeBatch:
        """A batch where every event has the same op."""
        return cls(schema, op * len(rows), rows=rows, ts_ms=ts_ms)

    # -- views --------------------------------------------------------------------------------
    @property
    def table(self) -> str:
        return self.schema.table

    def __len__(self) -> int:
        return len(self.ops)

    def rows(self) -> list[tuple]:
        """Row images as tuples (converted from Arrow once, then cached)."""
        if self._rows is None:
            assert self._arrow is not None
            cols = [c.to_pylist() for c in self._arrow.columns]
            self._rows = list(zip(*cols)) if cols else [()] * self._arrow.num_rows
        return self._rows

    def arrow(self) -> pa.RecordBatch:
        """Row images as an Arrow RecordBatch (converted from tuples once, then cached)."""
        if self._arrow is None:
            assert self._rows is not None
            schema = self.schema.arrow_schema
            if self._rows:
                cols = list(zip(*self._rows))
                arrays = [pa.array(col, type=f.type) for col, f in zip(cols, schema)]
            else:
                arrays = [pa.array([], type=f.type) for f in schema]
            self._arrow = pa.RecordBatch.from_arrays(arrays, schema=schema)
        return self._arrow

    @property
    def has_arrow(self) -> bool:
        return self._arrow is not None

    def ts_ms_array(self) -> pa.Array:
        ts = self._ts
        if isinstance(ts, int):
            return pa.array(np.full(len(self), ts, dtype=np.int64))
        if isinstance(ts, pa.ChunkedArray):
            return ts.combine_chunks()
        if isinstance(ts, pa.Array):
            return ts
        return pa.array(ts, type=pa.int64())

    def ts_ms_list(self) -> list[int]:
        ts = self._ts
        if isinstance(ts, int):
            return [ts] * len(self)
        if isinstance(ts, (pa.Array, pa.ChunkedArray, np.ndarray)):
            return ts.tolist() if isinstance(ts, np.ndarray) else ts.to_pylist()
        return list(ts)

    def max_ts(self) -> int | None:
        """Largest event time in the batch, or None if empty."""
        if not len(self):
            return None
        ts = self._ts
        if isinstance(ts, int):
            return ts
        if isinstance(ts, (pa.Array, pa.ChunkedArray)):
            v = pc.max(ts).as_py()
            return None if v is None else int(v)
        return int(np.max(ts)) if isinstance(ts, np.ndarray) else max(ts)

    def ops_array(self) -> pa.Array:
        """The ops as an Arrow string column (vectorised, no per-event Python)."""
        n = len(self.ops)
        # one ASCII character per op: the string's bytes are the column's data buffer as is
        offsets = pa.py_buffer(np.arange(n + 1, dtype=np.int32))
        return pa.Array.from_buffers(pa.string(), n,
                                     [None, offsets, pa.py_buffer(self.ops.encode("ascii"))])

    @staticmethod
    def ops_from_array(column: pa.Array | pa.ChunkedArray) -> str:
        """The ops of an Arrow string column as :meth:`ops_array` builds it (one ASCII
        character per op): read from the data buffers, no per-event Python."""
        chunks = column.chunks if isinstance(column, pa.ChunkedArray) else [column]
        parts = []
        for chunk in chunks:
            n = len(chunk)
            if not n:
                continue
            offsets = np.frombuffer(chunk.buffers()[1], dtype=np.int32,
                                    count=n + 1, offset=chunk.offset * 4)
            start, end = int(offsets[0]), int(offsets[-1])
            if end - start != n or chunk.null_count:  # not one character each: the slow way
                parts.append("".join(chunk.to_pylist()))
                continue
            parts.append(chunk.buffers()[2].slice(start, n).to_pybytes().decode("ascii"))
        return "".join(parts)

    def changelog_table(self) -> pa.Table:
        """Row images plus ``op`` and ``ts_ms`` columns: the flat changelog form that file
        sinks write (like Debezium's ExtractNewRecordState with ``op`` kept)."""
        rb = self.arrow()
        cols = list(rb.columns) + [self.ops_array(), self.ts_ms_array().cast(pa.int64())]
        names = list(rb.schema.names) + [OP_COLUMN, TS_COLUMN]
        return pa.Table.from_arrays(cols, names=names)

    def keys(self) -> list[tuple]:
        idx = self.schema.key_indexes
        return [tuple(r[i] for i in idx) for r in self.rows()]

    def events(self) -> Iterator[ChangeEvent]:
        """Per-event view (costs a Python object per event: for debugging and row sinks)."""
        table, idx = self.table, self.schema.key_indexes
        before = self.before
        positions = self.positions
        for i, (op, row, ts) in enumerate(zip(self.ops, self.rows(), self.ts_ms_list())):
            key = tuple(row[j] for j in idx)
            b = before[i] if before is not None else None
            pos = positions[i] if positions is not None else None
            if op == DELETE:
                yield ChangeEvent(op, table, row, None, key, ts, pos)
            else:
                yield ChangeEvent(op, table, b, row, key, ts, pos)

    def slice(self, start: int, stop: int) -> ChangeBatch:
        ts = self._ts if isinstance(self._ts, int) else self._ts[start:stop]
        return ChangeBatch(
            self.schema, self.ops[start:stop],
            rows=self._rows[start:stop] if self._rows is not None else None,
            arrow=self._arrow.slice(start, stop - start) if self._arrow is not None else None,
            before=self.before[start:stop] if self.before is not None else None,
            ts_ms=ts, positions=self.positions[start:stop] if self.positions is not None else None,
            versions=self.versions[start:stop] if self.versions is not None else None)

    def __repr__(self) -> str:
        return f"ChangeBatch({self.table!r}, {len(self)} events)"
