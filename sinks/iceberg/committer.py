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
from sinks.lake.changes import TableChanges
from sinks.lake.committer import LakeCommitter

log = logging.getLogger(__name__)

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
        schema = new_table_schema(changes.schema, changes.row_schema, keyed=changes.collapsed)
        spec = partition_spec(fields_for(self.config.partition_fields, changes.schema), schema,
                              changes.table)
        props = {"format-version": "2",
                 TARGET_SIZE: str(self.config.target_file_size),
                 **self.config.table_properties}
        self.catalog.create_namespace_if_not_exists(ident[:-1])
        log.info("iceberg: creating table %s for %s", ".".join(ident), changes.table)
        return self.catalog.create_table(ident, schema=schema, partition_spec=spec,
                                         properties=props)

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

    def _upsert(self, tx, io, changes: TableChanges, name: str, props: dict) -> str:
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
                for f in done.added + added:
                    ow.append_data_file(f)
        else:
            with tx.update_snapshot(snapshot_properties=props).fast_append() as append:
                for f in added:
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

