"""The Delta committer: one Delta commit per table and checkpoint, exactly once.

For each checkpoint (ascending) the common lake committer hands over each table's changes
(:class:`~sinks.lake.changes.TableChanges`); :meth:`DeltaCommitter.commit_table` turns them
into exactly one commit of that table's Delta log:

* upsert (a table with a primary key, ``write-mode = "upsert"``): one MERGE of the collapsed
  changes by key (matched delete: delete; matched: update every column; not matched and no
  delete: insert).  A table that does not exist yet is created by appending the upserts (its
  first checkpoint can match nothing); a checkpoint of snapshot reads and inserts only, none
  of whose keys the table holds (snapshot chunks, new auto-increment keys), is appended too:
  what the MERGE would do, at the cost of an append.  A checkpoint with at least
  ``new-keys-append-threshold`` inserts of new keys besides other changes is committed in
  two commits: a MERGE of the other changes (its own application transaction: the app id
  with ``#merge``), then an append of the new keys carrying the checkpoint's transaction
  (a replay after a crash between them appends only).
* append (no primary key, or ``write-mode = "append"``): the change rows with ``op``,
  ``ts_ms`` and ``seq`` appended.

Appends and MERGEs stream the rows from the checkpoint's segments into deltalake as a record
batch reader (memory: a batch, plus what deltalake holds: the file it is writing, a MERGE's
join); a MERGE names the source's key range as a condition on the target, so that deltalake
skips the files outside it (it derives that range itself only from a source it holds whole).

Each commit carries the application transaction ``(app id, checkpoint id)`` (see
:meth:`~sinks.lake.committer.LakeCommitter.app_id`) in the same atomic log entry as its data.
Replay guard: a table whose transaction version for the app id is already >= the checkpoint
is skipped (and the first of two commits whose own transaction says so), so a checkpoint
replayed after a crash (all of it, or the tables after the one the crash hit) is never
applied twice.  Only the committer writes, one checkpoint at a time:
writers only stage write-ahead-log segments.

Staged data files (:meth:`DeltaCommitter.commit_files`): snapshot reads and inserts the
writers wrote as the table's Parquet files are added as they are (add actions with row
counts, null counts and key bounds) in the commit carrying the checkpoint's application
transaction, when their keys collide with nothing (another staged row, a change of the
checkpoint in the segments, a row of the table).  When the checkpoint has other changes of
the table, the staged rows are read back into its one MERGE -- unless
``new-keys-append-threshold`` (> 0) allows two commits and they are that many: then the
other changes go first in a commit of their own (app id with ``#changes``), as the MERGE of
a two-commit checkpoint does.  Colliding staged rows are read back and merged as above.

Crash points (:mod:`runtime.faults`), for the kill tests, besides the common ones
(``delta-table-committed``, ``delta-checkpoint-committed``, ``delta-maintained``: see
:class:`~sinks.lake.committer.LakeCommitter`): ``delta-part-committed``, the MERGE of a
checkpoint committed in two commits is in, its append of new keys not yet;
``delta-compacted``, maintenance compacted a table and has not vacuumed it yet (N is the
checkpoint after whose commit maintenance ran); ``delta-changes-committed``, a table's
segment changes are in, its staged files not yet added; ``delta-files-added``, they are
(before the common ``delta-table-committed``); ``delta-widened``, a table was rewritten with
wider column types, checkpoint N not yet committed into it.
"""
from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from runtime.errors import TerminalError
from runtime.faults import crash_point
from runtime.fs import is_url
from runtime.sink import CommitContext
from sinks.delta.config import DeltaSinkConfig
from sinks.delta.evolution import Evolution, evolve
from sinks.delta.partition import add_partition_columns, check_fields, partition_columns
from sinks.delta.table import CHANGES_SUFFIX, OP, PART_SUFFIX, DeltaLakeTable
from sinks.delta.types import describe, to_delta
from sinks.lake.changes import TableChanges
from sinks.lake.committer import LakeCommitter
from sinks.lake.partition import fields_for
from sinks.lake.staging import StagedFile, keys_overlap, keys_repeat, read_keys

log = logging.getLogger(__name__)
T = TypeVar("T")


class _Stream:
    """``pieces`` shaped by ``shape`` as a record batch reader of ``schema``, for deltalake
    to pull from while it writes; counts the rows.  An error raised while making a piece
    reaches deltalake as a failed stream: :meth:`write` raises the original one (a
    :class:`~runtime.errors.BadRecordError` stays one) instead of deltalake's text."""

    def __init__(self, pieces: Iterator[pa.Table], shape: Callable[[pa.Table], pa.Table],
                 schema: pa.Schema):
        self.rows = 0
        self._pieces, self._shape, self._schema = pieces, shape, schema
        self._error: BaseException | None = None

    def _batches(self) -> Iterator[pa.RecordBatch]:
        try:
            for piece in self._pieces:
                data = self._shape(piece)
                if data.schema != self._schema:
                    data = data.cast(self._schema)
                self.rows += data.num_rows
                yield from data.to_batches()
        except BaseException as exc:
            self._error = exc
            raise

    def write(self, write: Callable[[pa.RecordBatchReader], T]) -> T:
        try:
            return write(pa.RecordBatchReader.from_batches(self._schema, self._batches()))
        except Exception:
            if self._error is not None:
                raise self._error from None
            raise


class DeltaCommitter(LakeCommitter):
    """Commits each checkpoint's changes into the Delta tables under ``path``."""

    sink_name = "delta"

    def __init__(self, config: DeltaSinkConfig):
        super().__init__(config)
        self.config = config
        check_fields(config.partition_fields)
        self._fields = config.partition_fields
        self._partition_by = partition_columns(self._fields)
        self._tables: dict[str, DeltaLakeTable] = {}
        self._owners: dict[str, str] = {}  # Delta table uri -> the source table writing it

    # -- commits -------------------------------------------------------------------------------
    def commit_table(self, changes: TableChanges, context: CommitContext) -> None:
        """Commit ``changes`` into their Delta table as one commit (see the module docs);
        a no-op when the table already holds checkpoint ``changes.checkpoint_id``."""
        cp, app = changes.checkpoint_id, self.app_id(context)
        # partition-by, else the table's partition keys (a transform's partition-keys)
        self._fields = fields_for(self.config.partition_fields, changes.schema)
        self._partition_by = partition_columns(self._fields)
        target = self._table(changes.table)
        exists = target.load()
        if exists:
            done = target.committed(app)
            if done is not None and done >= cp:
                log.info("delta: table %s already holds checkpoint %d (it is at %d): "
                         "not applied again", changes.table, cp, done)
                return
        started = time.monotonic()
        props = DeltaLakeTable.commit_properties(app, cp)
        if exists:
            what = self._write(target, changes, props, context)
        else:
            what = self._create(target, changes, props)
        log.info("delta: table %s, checkpoint %d: %s in %.2fs", changes.table, cp, what,
                 time.monotonic() - started)

    def commit_files(self, files: list[StagedFile], changes: TableChanges | None,
                     segments: list[str], context: CommitContext) -> bool:
        """Add the staged data ``files`` as they are, in the commit carrying the checkpoint's
        application transaction, when none of their keys collides with another staged row,
        a segment change of the checkpoint or a row of the table, and they have the table's
        columns.  The table's segment changes (``changes``), if any: with at least
        ``new-keys-append-threshold`` (> 0) staged rows they go first, in a commit of their
        own (app id with ``#changes``: a replay after a crash between the two adds the files
        only), as the two-commit checkpoints of that option do; else (the default: one
        commit per table and checkpoint) the staged rows are read back and committed with
        the segment changes as :meth:`commit_table` does, as are colliding ones (returns
        True: the files are garbage then)."""
        cp, app, table = context.checkpoint_id, self.app_id(context), files[0].table
        self._fields, self._partition_by = [], []  # staged: unpartitioned tables only
        target = self._table(table)
        exists = target.load()
        if exists:
            done = target.committed(app)
            if done is not None and done >= cp:
                log.info("delta: table %s already holds checkpoint %d (it is at %d): "
                         "not applied again", table, cp, done)
                return False
        started = time.monotonic()
        staged = sum(f.rows for f in files)
        threshold = self.config.new_keys_append_threshold
        if changes is not None and not (threshold and staged >= threshold):
            # one Delta commit per table per checkpoint (new-keys-append-threshold 0): the
            # staged rows join the MERGE of the other changes (no key checks needed for that)
            schema, why = None, "other changes in the checkpoint (one commit)"
        else:
            schema, why = self._collision(target, exists, files, changes)
        if why:
            log.info("delta: table %s, checkpoint %d: %s: merging the %d staged rows",
                     table, cp, why, staged)
            self.commit_table(self.merged_changes(files, segments, cp), context)
            return True
        what = ""
        if changes is not None:
            done = target.committed(app + CHANGES_SUFFIX)
            if done is None or done < cp:
                what = self._write(target, changes, DeltaLakeTable.part_properties(
                    app, cp, CHANGES_SUFFIX), context) + "; then "
                crash_point("delta-changes-committed", cp)
                target.load()
        target.add_files(files, schema, DeltaLakeTable.commit_properties(app, cp),
                         create=not exists, configuration=self._configuration())
        crash_point("delta-files-added", cp)
        log.info("delta: table %s, checkpoint %d: %sadded %d staged files (%d rows) in %.2fs",
                 table, cp, what, len(files), sum(f.rows for f in files),
                 time.monotonic() - started)
        return False

    def _collision(self, target: DeltaLakeTable, exists: bool, files: list[StagedFile],
                   changes: TableChanges | None) -> tuple[pa.Schema, str]:
        """The staged files' Arrow schema, and why they can't be added as they are ('' when
        they can): files of different columns, columns not the table's, keys twice among
        them, keys the checkpoint's segment changes also change, keys the table holds."""
        schemas = {pq.read_schema(f.path).remove_metadata() for f in files}
        if len(schemas) > 1:
            return pa.schema([]), "staged files of different columns"
        (schema,) = schemas
        if exists:
            if target.partition_columns():
                return schema, "the table is partitioned"
            have = target.schema()
            if have.names != schema.names or have.types != schema.types:  # nullability aside
                return schema, "the staged columns are not the table's"
        elif changes is not None:
            return schema, "segment changes into a table not created yet"
        row_schema, keys = read_keys(files)
        if changes is not None and (changes.schema != row_schema or not changes.collapsed):
            return schema, "segment changes of another schema"
        pk = list(row_schema.primary_key)
        keys = keys.select(pk)
        if keys_repeat(keys):
            return schema, "a key staged twice"
        if changes is not None:
            theirs = self._keys(changes, schema)
            if keys_overlap(keys, theirs):
                return schema, "a staged key changed again in the checkpoint"
        if exists and bool(target.held(keys).any()):
            return schema, "a staged key the table holds"
        return schema, ""

    def _shape(self, rows: pa.Table, table: str) -> pa.Table:
        """``rows`` in Delta's types, with the partition columns ``partition-by`` derives."""
        return add_partition_columns(to_delta(rows, table), self._fields, table)

    def _create(self, target: DeltaLakeTable, changes: TableChanges, props: Any) -> str:
        """The table's first commit: it holds no key yet, so upserts are appended (streamed)
        and deletes dropped."""
        kind = "upserts" if changes.collapsed else "changelog"
        table = changes.table
        stream = _Stream(changes.pieces(kind), lambda p: self._shape(p, table),
                         self._shape(changes.empty(kind), table).schema)
        stream.write(lambda reader: target.append(
            reader, props, partition_by=self._partition_by, configuration=self._configuration(),
            target_file_size=self.config.target_file_size))
        return f"created with {stream.rows} rows"

    def _write(self, target: DeltaLakeTable, changes: TableChanges, props: Any,
               context: CommitContext) -> str:
        """A commit into an existing table: its schema evolved first (see
        :mod:`sinks.delta.evolution`), then a MERGE (upsert), an append of new keys (upsert,
        inserts only, none in the table: what the MERGE would do), a MERGE then an append
        of new keys (upsert, at least ``new-keys-append-threshold`` of them: two commits)
        or an append of change rows.  The rows stream from the segments."""
        self._check_layout(target, changes)
        table, upsert = changes.table, changes.collapsed
        kind = "rows" if upsert else "changelog"
        extra = (OP,) if upsert else ()

        def sample() -> Evolution:  # the columns only: what evolving the table needs
            data = self._shape(changes.empty(kind), table)
            if upsert:
                data = data.append_column(OP, pa.array([], pa.string()))
            return evolve(target.schema(), data, table, target.uri, extra)

        evo = sample()
        if evo.widen:
            self._widen(target, evo.widen, changes, context)
            evo = sample()
        have = target.schema()
        append = dict(partition_by=self._partition_by, configuration={},
                      target_file_size=self.config.target_file_size,
                      merge_schema=bool(evo.added))

        def conform(piece: pa.Table) -> pa.Table:
            return evolve(have, self._shape(piece, table), table, target.uri).data

        new = self._new_keys(target, changes, have) if upsert else None
        fresh = 0 if new is None else int(np.count_nonzero(new))
        if upsert and fresh == len(changes):  # only inserts, of keys the table lacks
            stream = _Stream(changes.pieces("rows"), conform, evo.data.drop_columns([OP]).schema)
            stream.write(lambda reader: target.append(reader, props, **append))  # ~1/1.7 a MERGE
            what = f"appended {stream.rows} new keys"
        elif upsert and fresh and fresh >= self.config.new_keys_append_threshold > 0:
            what = self._merge_then_append(target, changes, new, have, evo, props, append,
                                           conform, context)
        elif upsert:
            m = self._merge(target, changes, have, evo, props)
            what = _merged(len(changes), m)
        else:
            stream = _Stream(changes.pieces("changelog"), conform, evo.data.schema)
            stream.write(lambda reader: target.append(reader, props, **append))
            what = f"appended {stream.rows} change rows"
        if evo.added:
            what += f"; added column(s) {', '.join(evo.added)}"
        return what

    def _new_keys(self, target: DeltaLakeTable, changes: TableChanges,
                  have: pa.Schema) -> np.ndarray | None:
        """Which changes insert a key the table does not hold (numpy mask); None when that
        can't change how the checkpoint is committed (a MERGE either way: not only inserts,
        and fewer than ``new-keys-append-threshold`` of them), so the table's keys are not
        read for nothing."""
        inserts = changes.is_insert()
        count = int(np.count_nonzero(inserts))
        threshold = self.config.new_keys_append_threshold
        if count < len(changes) and (not threshold or count < threshold):
            return None
        keys = self._keys(changes, have)
        new = inserts.copy()
        new[inserts] = ~target.held(keys.filter(pa.array(inserts)))
        return new

    def _merge_then_append(self, target: DeltaLakeTable, changes: TableChanges,
                           new: np.ndarray, have: pa.Schema, evo: Evolution, props: Any,
                           append: dict[str, Any], conform: Callable[[pa.Table], pa.Table],
                           context: CommitContext) -> str:
        """Checkpoint ``changes`` in two commits: a MERGE of the changes that are no insert
        of a new key (tagged by :meth:`~DeltaLakeTable.part_properties`), then an append of
        the ``new`` ones carrying the checkpoint's application transaction (``props``).  A
        replay after a crash between the two finds the MERGE's transaction and appends only:
        the new keys are the same then (the MERGE touched none of them), and so is the
        split."""
        cp, app = changes.checkpoint_id, self.app_id(context)
        rest = changes.select(~new)
        done = target.committed(app + PART_SUFFIX)
        if done is not None and done >= cp:
            what = f"the MERGE of {len(rest)} changes was committed before"
            log.info("delta: table %s already holds the MERGE of checkpoint %d: appending "
                     "its new keys", changes.table, cp)
        else:
            m = self._merge(target, rest, have, evo, DeltaLakeTable.part_properties(app, cp))
            what = _merged(len(rest), m)
            crash_point("delta-part-committed", cp)
            target.load()
        stream = _Stream(changes.select(new).pieces("rows"), conform,
                         evo.data.drop_columns([OP]).schema)
        stream.write(lambda reader: target.append(reader, props, **append))
        return f"{what}; then appended {stream.rows} new keys"

    def _merge(self, target: DeltaLakeTable, changes: TableChanges, have: pa.Schema,
               evo: Evolution, props: Any) -> dict[str, Any]:
        """One MERGE of the collapsed changes, its source streamed from the segments (memory:
        a batch, not the checkpoint), the target's files pruned to the range of the first
        key column (what deltalake derives itself only from a source it holds whole).  A
        first key column with no range to give (not an integer or a string) takes the
        source whole instead."""
        table, keys = changes.table, list(changes.schema.primary_key)
        bounds = _key_range(self._keys(changes, have).column(0))
        if bounds is None:
            data = self._shape(changes.read("rows"), table).append_column(OP, changes.ops)
            data = evolve(have, data, table, target.uri, (OP,)).data
            return target.merge(data, keys, props, merge_schema=bool(evo.added))

        def conform(piece: pa.Table) -> pa.Table:
            ops = piece.column(OP)
            data = self._shape(piece.drop_columns([OP]), table).append_column(OP, ops)
            return evolve(have, data, table, target.uri, (OP,)).data

        stream = _Stream(changes.pieces("rows", op_column=OP), conform, evo.data.schema)
        return stream.write(lambda reader: target.merge(
            reader, keys, props, merge_schema=bool(evo.added), bounds=(keys[0], *bounds)))

    @staticmethod
    def _keys(changes: TableChanges, have: pa.Schema) -> pa.Table:
        """The changed keys in the types of the table's key columns."""
        keys = to_delta(changes.keys, changes.table)
        return pa.table({k: keys.column(k).cast(have.field(k).type) for k in keys.column_names})

    def _table(self, table_id: str) -> DeltaLakeTable:
        known = self._tables.get(table_id)
        if known is not None:
            return known
        try:
            uri = self.config.table_uri(table_id)
        except ValueError as exc:
            raise TerminalError(f"delta: table {table_id!r} has no table path: {exc}") from None
        owner = self._owners.setdefault(uri, table_id)
        if owner != table_id:
            raise TerminalError(f"delta: tables {owner} and {table_id} both map to the Delta "
                                f"table at {uri}; put {{db}} and {{table}} in table-path, or "
                                f"merge them with a [[route]]")
        known = self._tables[table_id] = DeltaLakeTable(uri, table_id, self.config.storage())
        return known

    def _configuration(self) -> dict[str, str]:
        retention = f"interval {int(self.config.retention)} seconds"
        return {"delta.targetFileSize": str(self.config.target_file_size),
                "delta.deletedFileRetentionDuration": retention,
                "delta.logRetentionDuration": retention,
                **self.config.table_properties}

    def _check_layout(self, target: DeltaLakeTable, changes: TableChanges) -> None:
        have = target.partition_columns()
        if have != self._partition_by:
            raise TerminalError(
                f"delta: table {changes.table} at {target.uri} is partitioned by "
                f"{have or 'nothing'}, but partition-by gives {self._partition_by or 'none'}; "
                f"set partition-by as the table has it, or move the table away and restart "
                f"with --fresh")
        if changes.collapsed:
            missing = [k for k in changes.schema.primary_key
                       if k not in target.schema().names]
            if missing:
                raise TerminalError(
                    f"delta: table {changes.table} at {target.uri} has no column "
                    f"{missing[0]!r} of the primary key to merge by; move the table away and "
                    f"restart with --fresh, or use write-mode = \"append\"")

    def _widen(self, target: DeltaLakeTable, widen: dict[str, pa.DataType],
               changes: TableChanges, context: CommitContext) -> None:
        """Widen the table's ``widen`` columns (name -> wider type).  deltalake can't change
        a column's type in place (no ``typeWidening``), so the table is rewritten with the
        wider types in one overwrite commit, streamed batch by batch (memory stays a batch),
        tagged ``hub.widened`` and carrying no application transaction: a crash after it
        finds the table widened and commits the checkpoint as usual."""
        started = time.monotonic()
        rows = target.rewrite_widened(widen, self._partition_by,
                                      self.config.target_file_size,
                                      DeltaLakeTable.maintenance_properties(
                                          self.app_id(context),
                                          "widened " + ", ".join(sorted(widen))))
        log.warning("delta: table %s: widened %s; rewrote its %d rows in %.1fs", changes.table,
                    ", ".join(f"{c} to {describe(t)}" for c, t in widen.items()), rows,
                    time.monotonic() - started)
        crash_point("delta-widened", changes.checkpoint_id)
        target.load()

    # -- maintenance ---------------------------------------------------------------------------
    def maintain(self, tables: list[str], context: CommitContext) -> None:
        """Compact the small files of ``tables`` into files of about ``target-file-size``,
        delete the files no version younger than ``retention`` references, checkpoint the
        log and delete its entries older than ``retention`` (the tables are created with
        ``delta.logRetentionDuration`` = ``retention``).  None changes a row or loses an
        application transaction: a crash in between leaves nothing to repair (the next
        round does the rest)."""
        for table_id in tables:
            target = self._table(table_id)
            if not target.load():
                continue
            started = time.monotonic()
            metrics = target.compact(self.config.target_file_size,
                                     DeltaLakeTable.maintenance_properties(
                                         self.app_id(context), "compact"))
            crash_point("delta-compacted", context.checkpoint_id)
            removed = target.vacuum(self.config.retention)
            target.checkpoint_and_clean_log()
            log.info("delta: table %s maintained in %.2fs: %s files compacted into %s, %d "
                     "unreferenced files deleted, log checkpointed", table_id,
                     time.monotonic() - started, metrics.get("numFilesRemoved", 0),
                     metrics.get("numFilesAdded", 0), len(removed))

    # -- fresh starts --------------------------------------------------------------------------
    def existing_output(self, pipeline: str) -> list[str]:
        """The Delta tables under ``path`` with a transaction of a job of ``pipeline``
        through this sink (their log checkpoint keeps it after old commits are cleaned up):
        a fresh start would write its changes a second time.  Local folders only: object
        stores are not listed (logged)."""
        root = self.config.root
        if is_url(root) and not root.startswith("file://"):
            log.info("delta: tables under %s are not looked for (not a local folder)", root)
            return []
        prefix, found = self.app_prefix(pipeline), []
        for folder, dirs, _files in os.walk(root.removeprefix("file://")):
            if "_delta_log" not in dirs:
                continue
            dirs.clear()  # a table's own folders hold no tables
            table = DeltaLakeTable(folder, folder, None)
            if not table.load():
                continue
            for app in sorted(a for a in table.app_ids()
                              if a.startswith(prefix) and not a.endswith(PART_SUFFIX)):
                found.append(f"{folder} (Delta table: checkpoint {table.committed(app)} of "
                             f"job {app[len(prefix):]})")
        return sorted(found)


def _key_range(column: pa.ChunkedArray) -> tuple[str, str] | None:
    """The lowest and highest value of a key column as SQL literals of deltalake's
    expressions, for an integer or string column with values (None otherwise)."""
    if not (pa.types.is_integer(column.type) or pa.types.is_string(column.type)
            or pa.types.is_large_string(column.type)):
        return None
    bounds = pc.min_max(column)
    low, high = bounds["min"].as_py(), bounds["max"].as_py()
    if low is None:
        return None
    if isinstance(low, int):
        return str(low), str(high)
    return _string_literal(low), _string_literal(high)


def _string_literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _merged(changes: int, m: dict[str, Any]) -> str:
    return (f"merged {changes} changes: {m.get('num_target_rows_inserted', 0)} inserted, "
            f"{m.get('num_target_rows_updated', 0)} updated, "
            f"{m.get('num_target_rows_deleted', 0)} deleted")

