"""A checkpoint's changes of one table, in the form a lake-table commit takes, streamed.

The committer reads the write-ahead-log segments of a checkpoint (one per writer) in two
passes, so that its memory is about one record batch plus what the table format needs, never
the whole checkpoint:

1. :func:`scan` reads every batch once and keeps, per table, only the schemas, the ops, the
   source order (``seq``: the batches' versions) and, in upsert mode (a table with a primary
   key), the key columns -- the committer has it read only those columns from the segments
   (``light``: Arrow IPC reads just their buffers); it collapses the changes to the last one
   of each key in source order (by ``seq``, so changes of one key that reached different
   writers -- a snapshot row and a later binlog change -- still come out in source order)
   and gives one :class:`TableChanges` per table: which rows to take, no row images;
2. :meth:`TableChanges.pieces` reads the segments again when the format commits the table and
   yields the rows taken, a record batch at a time (or in pieces of about a given size), cast
   to the table's unified columns, with their ops if asked: an append or a MERGE streams them
   into the table (:meth:`TableChanges.read` holds them whole, for a format or a test that
   needs that).  The scan keeps the batches of a small checkpoint (see :data:`KEEP_BYTES`),
   so that they are not read twice; past that, memory stays about a batch plus the keys.

Arrow columns throughout, no per-row Python.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pyarrow as pa

from runtime.batch import DELETE, OP_COLUMN, SEQ_COLUMN, TS_COLUMN, ChangeBatch
from runtime.errors import TerminalError
from runtime.schema import Column, TableSchema
from runtime.versioned import VersionClock, last_per_key

#: What :meth:`TableChanges.pieces` yields: ``rows`` (one row image per change taken),
#: ``upserts`` (those of changes that are no delete), ``changelog`` (``rows`` with ``op``,
#: ``ts_ms`` and ``seq``).
Kind = Literal["rows", "upserts", "changelog"]
#: A source of a checkpoint's batches that can be read more than once, in the same order.
BatchSource = Callable[[], Iterable[ChangeBatch]]

#: How many bytes of batches :func:`scan` keeps, so that a small checkpoint's rows are read
#: once: past it, every table's batches are let go and read again from the segments when
#: the format takes them (they stream, also into a MERGE: keeping a large checkpoint's
#: batches for it cost their size in memory for the whole commit).
KEEP_BYTES = 32 << 20

_D = ord(DELETE)
_INSERTS = np.array([ord("r"), ord("c")], dtype=np.uint8)


@dataclass(frozen=True, eq=False)
class TableChanges:
    """The changes of one table in one checkpoint (built by :func:`scan` or :func:`collect`).

    * ``schema``: the columns with their logical types and the primary key: the table's
      latest schema in the checkpoint, then columns an earlier schema of the checkpoint had
      and the latest lacks (a dropped column stays, null in later rows);
    * ``row_schema``: the Arrow schema rows come in (per column the type of its latest
      batch, widened where an earlier batch had a wider one; dropped columns nullable);
    * ``collapsed``: True when only the last change of each primary key in source order is
      taken (upsert mode); False when every change is, in the order writers got them;
    * ``codes``, ``seq``: per change taken, its op (as a byte: ``r``, ``c``, ``u``, ``d``) and
      its source order; ``keys``: its key columns (``collapsed`` only, else None).

    Row images are not held: :meth:`pieces` reads them from the segments when asked.
    """

    table: str
    schema: TableSchema
    checkpoint_id: int
    row_schema: pa.Schema
    collapsed: bool
    codes: np.ndarray
    seq_np: np.ndarray
    keys: pa.Table | None
    _source: BatchSource = field(repr=False)
    _keep: np.ndarray | None = field(repr=False)   # positions taken in the table's stream
    _total: int = field(repr=False)                # the table's changes in the stream

    def __len__(self) -> int:
        return len(self.codes)

    # -- what is known without reading rows --------------------------------------------------
    @property
    def ops(self) -> pa.Array:
        """The op of each change taken, as an Arrow string column."""
        return _ops(self.codes)

    @property
    def seq(self) -> pa.Array:
        return pa.array(self.seq_np, type=pa.int64())

    def is_delete(self) -> pa.Array:
        """Boolean mask of the changes taken that are deletes."""
        return pa.array(self.codes == _D)

    def deletes(self) -> int:
        return int(np.count_nonzero(self.codes == _D))

    def only_inserts(self) -> bool:
        """Whether every change is a snapshot read or an insert (no key existed before, as
        far as the source knows: a fast append may apply where the target has none of them)."""
        return bool(np.isin(self.codes, _INSERTS).all())

    def is_insert(self) -> np.ndarray:
        """Boolean mask (numpy) of the changes taken that are snapshot reads or inserts."""
        return np.isin(self.codes, _INSERTS)

    def select(self, mask: np.ndarray) -> TableChanges:
        """The changes taken where ``mask`` (numpy, one bool per change) is True, in the
        same order; their rows are read from the same segments."""
        positions = self._keep if self._keep is not None else np.arange(self._total)
        return dataclasses.replace(
            self, codes=self.codes[mask], seq_np=self.seq_np[mask],
            keys=None if self.keys is None else self.keys.filter(pa.array(mask)),
            _keep=positions[mask])

    def deleted_keys(self) -> pa.Table:
        """The key columns of the changes that are deletes (``collapsed`` only)."""
        assert self.keys is not None, "only a collapsed table's changes have keys"
        return self.keys.filter(self.is_delete())

    # -- rows, read from the segments --------------------------------------------------------
    def empty(self, kind: Kind = "rows") -> pa.Table:
        """No rows, the columns of ``kind`` (see :data:`Kind`)."""
        rows = self.row_schema.empty_table()
        if kind != "changelog":
            return rows
        self._check_changelog()
        return (rows.append_column(OP_COLUMN, pa.array([], pa.string()))
                .append_column(TS_COLUMN, pa.array([], pa.int64()))
                .append_column(SEQ_COLUMN, pa.array([], pa.int64())))

    def pieces(self, kind: Kind = "rows", max_bytes: int = 0,
               op_column: str | None = None) -> Iterator[pa.Table]:
        """The rows of ``kind`` in source order (as the writers got them), read from the
        segments: one record batch at a time, or, with ``max_bytes``, in pieces of at least
        that many bytes (the last one smaller).  Each piece has the columns of
        :meth:`empty` (``kind``), then, with ``op_column`` (``rows`` only: a MERGE's
        source), each row's op as a string column of that name.  Raises
        :class:`TerminalError` when a segment changed since :func:`scan` read it, or a
        changelog would clash with a column's name."""
        if kind == "changelog":
            self._check_changelog()
        if op_column is not None and kind != "rows":
            raise ValueError(f"op_column goes with the rows kind, not {kind!r}")
        positions = self._positions(kind)
        buf: list[pa.Table] = []
        size = offset = 0
        for b in self._source():
            if b.table != self.table or not len(b):
                continue
            n = len(b)
            start, offset = offset, offset + n
            if positions is None:
                lo, hi, take = start, offset, None
            else:
                lo, hi = (int(i) for i in np.searchsorted(positions, [start, offset]))
                if lo == hi:
                    continue
                take = None if hi - lo == n else pa.array(positions[lo:hi] - start)
            piece = _conform(pa.Table.from_batches([b.arrow()]), self.row_schema)
            if take is not None:
                piece = piece.take(take)
            if op_column is not None:  # rows: positions index the changes taken, in order
                piece = piece.append_column(op_column, _ops(self.codes[lo:hi]))
            if kind == "changelog":
                ts = b.ts_ms_array().cast(pa.int64())
                at = (lo, hi) if self._keep is not None else (start, offset)
                piece = (piece.append_column(OP_COLUMN, _ops(self.codes[at[0]:at[1]]))
                         .append_column(TS_COLUMN, ts.take(take) if take is not None else ts)
                         .append_column(SEQ_COLUMN,
                                        pa.array(self.seq_np[at[0]:at[1]], pa.int64())))
            if not max_bytes:
                yield piece
                continue
            buf.append(piece)
            size += piece.nbytes
            if size >= max_bytes:
                yield pa.concat_tables(buf)
                buf, size = [], 0
        if offset != self._total:
            raise TerminalError(f"table {self.table}: checkpoint {self.checkpoint_id}'s staged "
                                f"changes changed while being committed ({self._total} rows "
                                f"before, {offset} now)")
        if buf:
            yield pa.concat_tables(buf)

    def read(self, kind: Kind = "rows") -> pa.Table:
        """All rows of ``kind`` at once (for a format that needs them whole: a MERGE)."""
        parts = list(self.pieces(kind))
        return pa.concat_tables(parts) if parts else self.empty(kind)  # chunks: no copy

    @property
    def rows(self) -> pa.Table:
        """One row image per change taken (the row after it, the row before it for a
        delete): :meth:`read` of ``rows``."""
        return self.read("rows")

    def upserts(self) -> pa.Table:
        """The rows whose change is not a delete (with ``collapsed``: what each key holds
        after the checkpoint, for the keys that still exist)."""
        return self.read("upserts")

    def changelog(self) -> pa.Table:
        """``rows`` plus the ``op``, ``ts_ms`` and ``seq`` columns (append mode).  Raises a
        one-line :class:`TerminalError` when the table has a column of one of those names."""
        return self.read("changelog")

    def _positions(self, kind: Kind) -> np.ndarray | None:
        if kind != "upserts":
            return self._keep
        live = self.codes != _D
        if live.all():
            return self._keep
        return self._keep[live] if self._keep is not None else np.flatnonzero(live)

    def _check_changelog(self) -> None:
        clash = [c for c in (OP_COLUMN, TS_COLUMN, SEQ_COLUMN) if c in self.row_schema.names]
        if clash:
            raise TerminalError(
                f"table {self.table}: column {clash[0]!r} has the name of a change column "
                f"({OP_COLUMN}, {TS_COLUMN}, {SEQ_COLUMN}) that change rows carry: use "
                f"write-mode = \"upsert\" for a table with a primary key, or rename the column")


def segments_source(segments: list[str],
                    columns: Callable[[TableSchema], Sequence[str]] | None = None
                    ) -> BatchSource:
    """The batches of write-ahead-log ``segments``, streamed (one record batch at a time)
    each time it is called; with ``columns``, holding only the row columns it names of each
    batch's schema (see :meth:`~runtime.wal.WriteAheadLog.iter_segment`)."""
    from runtime.wal import WriteAheadLog

    return lambda: (b for path in segments for b in WriteAheadLog.iter_segment(path, columns))


def key_columns(schema: TableSchema) -> tuple[str, ...]:
    """What :func:`scan` needs of a batch's row columns in upsert mode: its primary key
    (for ``columns`` of :func:`segments_source`)."""
    return tuple(schema.primary_key)


def no_columns(schema: TableSchema) -> tuple[str, ...]:
    """What :func:`scan` needs of a batch's row columns in append mode: none."""
    return ()


@dataclass
class _Seen:
    """What :func:`scan` keeps of one table while reading."""

    schemas: list[TableSchema] = field(default_factory=list)
    codes: list[np.ndarray] = field(default_factory=list)
    seq: list[np.ndarray] = field(default_factory=list)
    keys: list[tuple[tuple[str, ...], pa.Table]] = field(default_factory=list)
    rows: int = 0
    #: The table's batches as read, while kept (see :data:`KEEP_BYTES`); None once let go.
    kept: list[ChangeBatch] | None = field(default_factory=list)
    kept_bytes: int = 0


def scan(source: BatchSource, checkpoint_id: int, upsert: bool, sink: str,
         light: BatchSource | None = None) -> list[TableChanges]:
    """One :class:`TableChanges` per table of ``source``'s batches (in order of first
    appearance), collapsed by key where ``upsert`` and the table has a primary key: one read
    of ``source``, keeping ops, versions and (upsert) key columns only.  ``sink`` names the
    sink in errors.  Batches without versions get them from a :class:`VersionClock` (in the
    order given); :meth:`TableChanges.pieces` reads ``source`` again.  ``light``: the same
    batches with only the row columns the scan needs (see :func:`key_columns`), read
    instead of ``source`` (none are kept then: the rows are read from ``source`` once, by
    the format)."""
    clock = VersionClock()
    seen: dict[str, _Seen] = {}
    kept = 0  # bytes of the batches kept, all tables
    for b in (light or source)():
        if not len(b):
            continue
        b = clock.stamp(b)
        s = seen.setdefault(b.table, _Seen())
        if not s.schemas or s.schemas[-1] != b.schema:
            s.schemas.append(b.schema)
        # copies (see _owned): what is kept must not keep the batch's body
        s.codes.append(np.frombuffer(b.ops.encode("ascii"), dtype=np.uint8))
        s.seq.append(np.array(b.versions, dtype=np.int64))
        s.rows += len(b)
        if light is not None:
            s.kept = None
        elif s.kept is not None:
            s.kept.append(b)
            s.kept_bytes += b.arrow().nbytes
            kept += b.arrow().nbytes
            if kept > KEEP_BYTES:
                kept = _let_go(seen.values())
        if upsert and b.schema.primary_key:
            pk = tuple(b.schema.primary_key)
            s.keys.append((pk, _owned(pa.Table.from_batches([b.arrow()]).select(list(pk)))))
    return [_table_changes(table, s, source, checkpoint_id, upsert, sink)
            for table, s in seen.items()]


def collect(batches: Iterable[ChangeBatch], checkpoint_id: int, upsert: bool,
            sink: str) -> list[TableChanges]:
    """:func:`scan` of batches held in memory (tests, small inputs)."""
    held = list(batches)
    return scan(lambda: held, checkpoint_id, upsert, sink)


def _let_go(seen: Iterable[_Seen]) -> int:
    """Let go of every table's kept batches (past :data:`KEEP_BYTES`): the rows stream from
    the segments from now on.  Returns the bytes still kept (none)."""
    for s in seen:
        s.kept, s.kept_bytes = None, 0
    return 0


def _table_changes(table: str, s: _Seen, source: BatchSource, checkpoint_id: int, upsert: bool,
                   sink: str) -> TableChanges:
    schema = _merged_schema(s.schemas)
    row_schema = _unified_arrow_schema(table, s.schemas, schema, sink)
    codes = np.concatenate(s.codes)
    seq = np.concatenate(s.seq)
    collapsed = upsert and bool(schema.primary_key)
    keep = keys = None
    if collapsed:
        keys = _keys(table, s, source, schema, row_schema)
        keep = _last_per_key(keys, seq)
        if keep is not None:
            keys, codes, seq = keys.take(pa.array(keep)), codes[keep], seq[keep]
    if s.kept is not None:  # held: no second read of the segments
        held = s.kept
        source = lambda: held  # noqa: E731
    return TableChanges(table, schema, checkpoint_id, row_schema, collapsed, codes, seq, keys,
                        source, keep, s.rows)


def _keys(table: str, s: _Seen, source: BatchSource, schema: TableSchema,
          row_schema: pa.Schema) -> pa.Table:
    """The key columns (of the latest primary key, in the unified types) of every change."""
    pk = list(schema.primary_key)
    key_schema = pa.schema([row_schema.field(k) for k in pk])
    if all(list(names) == pk for names, _ in s.keys):
        parts = [_conform(t, key_schema) for _, t in s.keys]
    else:  # the key changed within the checkpoint: the latest key's columns, conformed
        parts = [_owned(_conform(pa.Table.from_batches([b.arrow()]), key_schema))
                 for b in source() if b.table == table and len(b)]
    return pa.concat_tables(parts).combine_chunks()


def _last_per_key(keys: pa.Table, seq: np.ndarray) -> np.ndarray | None:
    """:func:`~runtime.versioned.last_per_key` (ascending positions of each key's change of
    the highest ``seq``, the later one on a tie; None when every key occurs once), in numpy
    for a single integer key without nulls -- the usual primary key, and a snapshot
    checkpoint's million keys cost a sort instead of a hash aggregation (a tenth of the
    time); strictly increasing keys (snapshot chunks in key order) cost one comparison."""
    col = keys.column(0) if keys.num_columns == 1 else None
    if col is None or not pa.types.is_integer(col.type) or col.null_count:
        return last_per_key(keys, seq)
    k = col.to_numpy()
    n = len(k)
    if n < 2 or bool(np.all(k[1:] > k[:-1])):
        return None
    order = np.lexsort((seq, k))  # by key, then seq; stable: then position
    ks = k[order]
    last = np.ones(n, dtype=bool)
    last[:-1] = ks[1:] != ks[:-1]
    if last.all():
        return None
    return np.sort(order[last])


def _owned(t: pa.Table) -> pa.Table:
    """``t`` in buffers of its own: a column read from a segment is a slice of its batch's
    whole body, which stays in memory as long as any slice of it does."""
    return pa.Table.from_arrays([pa.concat_arrays(c.chunks) if c.num_chunks
                                 else pa.array([], c.type) for c in t.columns], schema=t.schema)


def _ops(codes: np.ndarray) -> pa.Array:
    """Op bytes as an Arrow string column: the bytes are its data buffer as they are."""
    n = len(codes)
    offsets = pa.py_buffer(np.arange(n + 1, dtype=np.int32))
    return pa.Array.from_buffers(pa.string(), n, [None, offsets, pa.py_buffer(codes.tobytes())])


def _merged_schema(schemas: list[TableSchema]) -> TableSchema:
    """The latest schema, then the columns only earlier schemas had (nullable)."""
    latest = schemas[-1]
    columns = list(latest.columns)
    names = set(latest.names)
    for sc in reversed(schemas[:-1]):
        for c in sc.columns:
            if c.name not in names:
                names.add(c.name)
                columns.append(Column(c.name, c.type, True, c.comment))
    return latest.with_columns(tuple(columns)) if len(columns) > len(latest.columns) else latest


def _unified_arrow_schema(table: str, schemas: list[TableSchema], schema: TableSchema,
                          sink: str) -> pa.Schema:
    """The Arrow schema all of a table's batches are cast to: per column the type of its
    latest batch, widened where an earlier batch had a wider one; dropped columns nullable."""
    fields: dict[str, pa.Field] = {}
    for sc in schemas:
        for f in sc.arrow_schema:
            prev = fields.get(f.name)
            if prev is None or prev.type == f.type:
                fields[f.name] = f
                continue
            try:
                merged = pa.unify_schemas([pa.schema([prev]), pa.schema([f])],
                                          promote_options="permissive")
            except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
                raise TerminalError(
                    f"{sink}: table {table}: column {f.name!r} changed type from {prev.type} "
                    f"to {f.type} within one checkpoint, and the first can't be widened to "
                    f"the second: recreate the table in the sink (or map the column with a "
                    f"transform) and restart") from None
            fields[f.name] = merged.field(0)
    latest = set(schema.primary_key) | set(schemas[-1].names)
    return pa.schema([fields[n] if n in latest else fields[n].with_nullable(True)
                      for n in schema.names])


def _conform(t: pa.Table, schema: pa.Schema) -> pa.Table:
    """``t`` with ``schema``'s columns in its order: missing ones null, others cast."""
    if t.schema == schema:
        return t
    n = t.num_rows
    cols = [t.column(f.name).cast(f.type) if f.name in t.column_names
            else pa.nulls(n, f.type) for f in schema]
    return pa.Table.from_arrays(cols, schema=schema)
