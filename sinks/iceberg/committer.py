"""The Iceberg committer: one Iceberg transaction per table per checkpoint, exactly once.

Each commit's snapshot carries ``hub.app-id`` (pipeline, sink and job id: the checkpoint
lineage) and ``hub.checkpoint-id`` in its summary.  Before committing checkpoint N to a table,
the committer walks the ancestry of the table's current snapshot to the latest snapshot of its
app id (as Flink's
``IcebergFilesCommitter`` finds its max committed checkpoint id) and skips the table when that
snapshot's checkpoint is N or later: a replay after a crash never applies a checkpoint twice,
also when the crash came between two tables' commits of one checkpoint.  Maintenance commits
(compaction) carry the last committed checkpoint id forward, so expiring old snapshots never
loses it.

Upsert tables (a primary key, ``write-mode = "upsert"``): the checkpoint's changes arrive
collapsed to one row per key; rows of every changed key are removed copy-on-write
(:mod:`sinks.iceberg.merge`) and the upserted rows appended, in one overwrite snapshot; a
checkpoint whose keys no data file can hold is a plain append.  Changelog tables (no key, or
``write-mode = "append"``): every change appended with ``op``, ``ts_ms`` and ``seq``.  New rows
are streamed from the checkpoint's segments and written in pieces of about
``target-file-size`` (memory: a piece, never the checkpoint).  The snapshot-summary tags and
the ancestry walk live in :mod:`sinks.iceberg.lineage`.

Staged data files (:meth:`IcebergCommitter.commit_files`): snapshot reads and inserts the
writers wrote as the table's Parquet files (with its field ids) become data files from their
footers, added in the checkpoint's one transaction (the same snapshot as the upsert of the
table's segment changes) when their keys collide with nothing; else their rows are read
back and committed as above.
"""
from __future__ import annotations

import logging
import os
import time
from typing import Any

import pyarrow as pa

from runtime.faults import crash_point
from runtime.sink import CommitContext
from sinks.iceberg import catalog as catalogs
from sinks.iceberg import merge
from sinks.iceberg.catalog import translate
from sinks.iceberg.config import IcebergSinkConfig
from sinks.iceberg.lineage import (APP_ID, CHECKPOINT_ID, TARGET_SIZE, app_ids,
                                   committed_checkpoint)
from sinks.iceberg.maintenance import maintain_table
from sinks.iceberg.tables import desired_columns, evolve, new_table_schema, partition_spec
from sinks.lake.partition import fields_for
from sinks.iceberg.types import convert_column, arrow_type, to_iceberg_arrow
from runtime.schema import TableSchema
from sinks.lake.changes import TableChanges
from sinks.lake.committer import LakeCommitter
from sinks.lake.staging import StagedFile, keys_overlap, keys_repeat, read_keys, side_schema

log = logging.getLogger(__name__)

def create_table(catalog: Any, config: IcebergSinkConfig, ident: tuple[str, ...],
                 schema: TableSchema, row_schema: pa.Schema, keyed: bool) -> Any:
    """Create the Iceberg table ``ident`` for rows of ``schema`` (``row_schema``: their Arrow
    schema; ``keyed``: upsert mode), with ``partition-by`` and the table properties."""
    ischema = new_table_schema(schema, row_schema, keyed=keyed)
    spec = partition_spec(fields_for(config.partition_fields, schema), ischema, schema.table)
    props = {"format-version": "2", TARGET_SIZE: str(config.target_file_size),
             **config.table_properties}
    with catalogs.SETUP:
        catalog.create_namespace_if_not_exists(ident[:-1])
        log.info("iceberg: creating table %s for %s", ".".join(ident), schema.table)
        return catalog.create_table(ident, schema=ischema, partition_spec=spec,
                                    properties=props)


def _file_uri(table: Any, path: str) -> str:
    """A staged file's local ``path`` as the table names its files (``file://`` when its
    location is one)."""
    return "file://" + path if table.location().startswith("file://") else path


def table_id_of(files: list[StagedFile]) -> str:
    return files[0].table


class IcebergCommitter(LakeCommitter):
    """Commits the staged changes of each checkpoint into Iceberg tables (see the module doc)."""

    sink_name = "iceberg"

    def __init__(self, config: IcebergSinkConfig):
        super().__init__(config)
        self.config = config
        self._catalog: Any = None

    # -- catalog and tables -------------------------------------------------------------------
    @property
    def catalog(self) -> Any:
        if self._catalog is None:
            self._catalog = catalogs.load(self.config)
        return self._catalog

    def _load(self, ident: tuple[str, ...]) -> Any | None:
        from pyiceberg.exceptions import NoSuchTableError

        try:
            return self.catalog.load_table(ident)
        except NoSuchTableError:
            return None

    def _create(self, ident: tuple[str, ...], changes: TableChanges) -> Any:
        from pyiceberg.exceptions import TableAlreadyExistsError

        try:
            return create_table(self.catalog, self.config, ident, changes.schema,
                                changes.row_schema, changes.collapsed)
        except TableAlreadyExistsError:  # a writer staging files created it meanwhile
            return self.catalog.load_table(ident)

    # -- staged data files --------------------------------------------------------------------
    def commit_files(self, files: list[StagedFile], changes: TableChanges | None,
                     segments: list[str], context: CommitContext) -> bool:
        """Add the staged data ``files`` as they are (data files built from their Parquet
        footers) in the checkpoint's one transaction of the table -- with the upsert of the
        table's segment changes (``changes``) when it has some -- when none of their keys
        collides with another staged row, a segment change or a row of the table, and they
        have the table's current columns.  Else their rows are read back and committed with
        the segment changes as :meth:`commit_table` does (returns True: the files are
        garbage then)."""
        from pyiceberg.io.pyarrow import parquet_file_to_data_file

        cp, table_id = context.checkpoint_id, files[0].table
        ident = self.config.identifier(table_id)
        name, app = ".".join(ident), self.app_id(context)
        with translate(f"table {name}"):
            table = self._load(ident)
            if table is not None:
                done = committed_checkpoint(table, app)
                if done is not None and done >= cp:
                    log.info("iceberg: table %s already holds checkpoint %d (up to %d): "
                             "skipped", name, cp, done)
                    return False
            why = self._collision(table, files, changes)
            data: list[Any] = []
            if not why:
                try:
                    data = [parquet_file_to_data_file(table.io, table.metadata,
                                                      _file_uri(table, f.path)) for f in files]
                except ValueError as exc:  # columns not the table's (evolved since)
                    why = f"the staged files' columns are not the table's ({exc})"
            if why:
                log.info("iceberg: table %s, checkpoint %d: %s: merging the %d staged rows",
                         name, cp, why, sum(f.rows for f in files))
                self.commit_table(self.merged_changes(files, segments, cp), context)
                return True
            props = {APP_ID: app, CHECKPOINT_ID: str(cp)}
            started = time.monotonic()
            what = ""
            with table.transaction() as tx:
                if changes is not None:
                    what = self._upsert(tx, table.io, changes, name, props, extra=data) + "; "
                else:
                    with tx.update_snapshot(snapshot_properties=props).fast_append() as append:
                        for f in data:
                            append.append_data_file(f)
                crash_point("iceberg-before-table-commit", cp)
            log.info("iceberg: table %s checkpoint %d: %sadded %d staged files (%d rows) in "
                     "%.2fs", name, cp, what, len(files), sum(f.rows for f in files),
                     time.monotonic() - started)
            return False

    def _collision(self, table: Any, files: list[StagedFile],
                   changes: TableChanges | None) -> str:
        """Why ``files`` can't be added as they are ('' when they can)."""
        if table is None:
            return "no table"  # a writer creates it before staging: dropped meanwhile
        row_schema, keys = read_keys(files)
        if any(side_schema(f) != row_schema for f in files):
            return "staged files of different schemas"
        if changes is not None and (changes.schema != row_schema or not changes.collapsed):
            return "segment changes of another schema"
        meta = table.metadata
        schema = meta.schema()
        if meta.spec().fields:
            return "the table is partitioned"
        pk = list(row_schema.primary_key)
        keys = pa.table({k: keys.column(k).cast(arrow_type(schema.find_field(k).field_type))
                         for k in pk})
        if keys_repeat(keys):
            return "a key staged twice"
        if changes is not None:
            theirs = pa.table({k: convert_column(changes.keys.column(k), keys.schema.field(k).type,
                                                 table_id_of(files), k) for k in pk})
            if keys_overlap(keys, theirs):
                return "a staged key changed again in the checkpoint"
        candidates = merge.candidate_files(merge.live_files(meta, table.io), meta, keys)
        if candidates and merge.held(candidates, meta, table.io, keys):
            return "a staged key the table holds"
        return ""

    # -- commit -------------------------------------------------------------------------------
    def commit_table(self, changes: TableChanges, context: CommitContext) -> None:
        """Commit ``changes`` (checkpoint ``changes.checkpoint_id``) to the table's Iceberg
        table in one transaction; idempotent per table and checkpoint."""
        ident = self.config.identifier(changes.table)
        name = ".".join(ident)
        app = self.app_id(context)
        with translate(f"table {name}"):
            table = self._load(ident) or self._create(ident, changes)
            done = committed_checkpoint(table, app)
            if done is not None and done >= changes.checkpoint_id:
                log.info("iceberg: table %s already holds checkpoint %d (up to %d): skipped",
                         name, changes.checkpoint_id, done)
                return
            props = {APP_ID: app, CHECKPOINT_ID: str(changes.checkpoint_id)}
            started = time.monotonic()
            with table.transaction() as tx:
                size = str(self.config.target_file_size)
                if table.properties.get(TARGET_SIZE) != size:  # the option changed since
                    tx.set_properties({TARGET_SIZE: size})
                columns = desired_columns(changes.schema, changes.row_schema,
                                          not changes.collapsed)
                with tx.update_schema() as update:
                    evolve(update, tx.table_metadata.schema(), columns, name)
                if changes.collapsed:
                    stats = self._upsert(tx, table.io, changes, name, props)
                else:
                    stats = self._append(tx, table.io, changes, name, props)
                crash_point("iceberg-before-table-commit", changes.checkpoint_id)
            log.info("iceberg: table %s checkpoint %d: %s in %.2fs", name,
                     changes.checkpoint_id, stats, time.monotonic() - started)

    def _append(self, tx, io, changes: TableChanges, name: str, props: dict) -> str:
        schema = tx.table_metadata.schema()
        files, rows = [], 0
        for piece in changes.pieces("changelog", self.config.target_file_size):
            data = to_iceberg_arrow(piece, schema, name)
            del piece
            rows += data.num_rows
            files += merge.write_files(data, tx.table_metadata, io)
        with tx.update_snapshot(snapshot_properties=props).fast_append() as append:
            for f in files:
                append.append_data_file(f)
        return f"appended {rows} changelog rows"

    def _upsert(self, tx, io, changes: TableChanges, name: str, props: dict,
                extra: list[Any] = ()) -> str:
        """Copy-on-write: the files holding changed keys rewritten without them, then the
        upserted rows written in pieces of about ``target-file-size`` (each sorted by key,
        for narrow key bounds per file), streamed from the segments."""
        meta = tx.table_metadata
        schema = meta.schema()
        key = list(changes.schema.primary_key)
        keys = pa.table({k: convert_column(changes.keys.column(k),
                                           arrow_type(schema.find_field(k).field_type), name, k)
                         for k in key})
        candidates = merge.candidate_files(merge.live_files(meta, io), meta, keys)
        done = merge.rewrite(candidates, meta, io, keys, self.config.target_file_size) \
            if candidates else merge.Rewrite()
        del keys
        added, upserts = [], 0
        for piece in changes.pieces("upserts", self.config.target_file_size):
            data = to_iceberg_arrow(piece, schema, name)
            del piece
            if data.num_rows and not merge.sorted_by_first(data, key[0]):
                data = data.sort_by([(k, "ascending") for k in key])
            upserts += data.num_rows
            added += merge.write_files(data, meta, io)
            del data
        if done.deleted:
            with tx.update_snapshot(snapshot_properties=props).overwrite() as ow:
                for f in done.deleted:
                    ow.delete_data_file(f)
                for f in done.added + added + list(extra):
                    ow.append_data_file(f)
        else:
            with tx.update_snapshot(snapshot_properties=props).fast_append() as append:
                for f in added + list(extra):
                    append.append_data_file(f)
        return (f"{upserts} upserts, {changes.deletes()} deletes; {len(candidates)} candidate "
                f"file(s), {len(done.deleted)} rewritten ({done.rows_dropped} rows replaced), "
                f"{len(done.added) + len(added)} file(s) added")

    # -- maintenance and fresh starts ---------------------------------------------------------
    def maintain(self, tables: list[str], context: CommitContext) -> None:
        app = self.app_id(context)
        for table_id in tables:
            ident = self.config.identifier(table_id)
            with translate(f"table {'.'.join(ident)}"):
                table = self._load(ident)
                if table is not None:
                    maintain_table(table, self.config, app, context)

    def existing_output(self, pipeline: str) -> list[str]:
        """The tables holding snapshots of an earlier job of ``pipeline`` through this sink
        (app ids starting with :meth:`app_prefix`), one line each."""
        from pyiceberg.exceptions import NoSuchNamespaceError, NoSuchTableError

        prefix = self.app_prefix(pipeline)
        out = []
        url = self.config.catalog_url()
        if url.startswith("sqlite:///") and not os.path.exists(url[len("sqlite:///"):]):
            return []  # no catalog yet: nothing written (and none created just to look)
        with translate("catalog"):
            for ns in self._namespaces():
                try:
                    idents = self.catalog.list_tables(ns)
                except NoSuchNamespaceError:
                    continue
                for ident in idents:
                    try:
                        table = self.catalog.load_table(ident)
                    except NoSuchTableError:
                        continue
                    ours = [cp for app, cp in app_ids(table).items() if app.startswith(prefix)]
                    if ours:
                        out.append(f"iceberg table {'.'.join(ident)} (checkpoints up to "
                                   f"{max(ours)})")
        return out

    def _namespaces(self) -> list[tuple[str, ...]]:
        if "{" not in self.config.namespace:
            return [tuple(self.config.namespace.split("."))]
        return [tuple(ns) for ns in self.catalog.list_namespaces()]

    def close(self) -> None:
        self._catalog = None

