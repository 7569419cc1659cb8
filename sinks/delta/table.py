"""One Delta table, through the ``deltalake`` package: the only module that calls it, and the
one place its errors become the hub's (:func:`delta_errors`).

Every write of a checkpoint is one Delta commit carrying the sink's application transaction
(``txn`` action: app id, version = checkpoint id) and, in its commit info, the app id and
checkpoint (``hub.app``, ``hub.checkpoint``), so that the table itself says which checkpoints
it holds: :meth:`DeltaLakeTable.committed` is the replay guard.  Maintenance commits carry
``hub.app`` and ``hub.maintenance`` (what they did), no transaction.
"""
from __future__ import annotations

import logging
import math
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import pyarrow as pa

from runtime.errors import MissingExtraError, TerminalError, TransientError
from sinks.lake.staging import StagedFile

try:
    from deltalake import CommitProperties, DeltaTable, Transaction, write_deltalake
    from deltalake.exceptions import (CommitFailedError, DeltaError, DeltaProtocolError,
                                      SchemaMismatchError, TableNotFoundError)
except ModuleNotFoundError as exc:  # pragma: no cover - depends on the install
    raise MissingExtraError("deltalake", "delta") from exc

log = logging.getLogger(__name__)

#: Commit-info keys naming the application (pipeline, sink, job) and checkpoint of a commit.
APP_KEY, CHECKPOINT_KEY = "hub.app", "hub.checkpoint"
#: Commit-info key of the first of a checkpoint's two commits into a table (see
#: :meth:`DeltaLakeTable.part_properties`), and what the app id of its transaction ends with.
PART_KEY, PART_SUFFIX = "hub.part", "#merge"
#: What the app id of a checkpoint's segment changes ends with when they are committed before
#: the checkpoint's staged data files are added (see :meth:`DeltaLakeTable.part_properties`).
CHANGES_SUFFIX = "#changes"
#: How many of the latest commits :meth:`DeltaLakeTable.app_ids` reads.
HISTORY_LOOKBACK = 100
#: The source column of a MERGE holding each row's op (never written to the table).
OP = "__hub_op"
_ROW = "__hub_row"  # a row number while matching keys
_ANSI = re.compile(r"\x1b\[[0-9;]*m")
# deltalake's words for trouble that may pass: the store, the network, a lost race
_TRANSIENT = re.compile(r"connection|timed? ?out|temporar|unavailable|throttl|slow down|"
                        r"too many requests|broken pipe|reset by peer|io error",
                        re.I)


def one_line(exc: BaseException) -> str:
    """A deltalake error (several indented, coloured lines) as one line."""
    text = _ANSI.sub("", str(exc))
    parts = [p.strip(" ↳") for p in text.splitlines()]
    return "; ".join(p for p in parts if p) or type(exc).__name__


@contextmanager
def delta_errors(what: str) -> Iterator[None]:
    """Translate what deltalake raises while doing ``what`` (names the table): a lost commit
    race and store or network trouble are transient, everything else (schema, protocol,
    data that does not fit) terminal.  Our own errors pass as they are."""
    try:
        yield
    except (TransientError, TerminalError):
        raise
    except CommitFailedError as exc:
        raise TransientError(f"delta: {what}: commit failed: {one_line(exc)}") from None
    except (SchemaMismatchError, DeltaProtocolError, TableNotFoundError) as exc:
        raise TerminalError(f"delta: {what}: {one_line(exc)}") from None
    except (DeltaError, OSError) as exc:
        cls = TransientError if isinstance(exc, OSError) or _TRANSIENT.search(str(exc)) \
            else TerminalError
        raise cls(f"delta: {what}: {one_line(exc)}") from None
    except Exception as exc:  # noqa: BLE001 - deltalake raises bare Exceptions (casts, ...)
        raise TerminalError(f"delta: {what}: {one_line(exc)}") from None


def delta_stats(f: StagedFile) -> str:
    """The statistics JSON of an add action for staged file ``f``: its row count, null
    counts, and the min/max of its key columns (those it has bounds for)."""
    import json

    lo = {k: v for k, v in f.min.items() if v is not None}
    hi = {k: v for k, v in f.max.items() if v is not None and k in lo}
    return json.dumps({"numRecords": f.rows, "minValues": {k: lo[k] for k in hi},
                       "maxValues": hi, "nullCount": f.nulls})


def quote(name: str) -> str:
    """``name`` as an identifier of a deltalake SQL expression (case and any character
    kept)."""
    return "`" + name.replace("`", "``") + "`"


class DeltaLakeTable:
    """The Delta table at ``uri`` (which may not exist yet), written for one source
    table ``table`` (named in errors)."""

    def __init__(self, uri: str, table: str, storage: dict[str, str] | None):
        self.uri, self.table, self.storage = uri, table, storage
        self._dt: Any = None

    # -- reading -----------------------------------------------------------------------------
    def load(self) -> bool:
        """Bring the table to its latest version (reading only the log entries since the
        last load); False when there is no Delta table at ``uri``."""
        with delta_errors(f"reading table {self.table} at {self.uri}"):
            if self._dt is not None:
                try:
                    self._dt.update_incremental()
                    return True
                except TableNotFoundError:  # deleted meanwhile: look again from scratch
                    self._dt = None
            if not DeltaTable.is_deltatable(self.uri, storage_options=self.storage):
                return False
            self._dt = DeltaTable(self.uri, storage_options=self.storage)
            return True

    @property
    def delta(self) -> Any:
        """The loaded :class:`deltalake.DeltaTable` (after a :meth:`load` that found it)."""
        assert self._dt is not None, "load() the table first"
        return self._dt

    def committed(self, app_id: str) -> int | None:
        """The version of application transaction ``app_id``: the highest checkpoint this
        sink committed into the table (None: none)."""
        with delta_errors(f"reading table {self.table} at {self.uri}"):
            return self.delta.transaction_version(app_id)

    def schema(self) -> pa.Schema:
        with delta_errors(f"reading table {self.table} at {self.uri}"):
            return pa.schema(self.delta.schema().to_arrow())

    def partition_columns(self) -> list[str]:
        with delta_errors(f"reading table {self.table} at {self.uri}"):
            return list(self.delta.metadata().partition_columns)

    # -- writing -----------------------------------------------------------------------------
    @staticmethod
    def commit_properties(app_id: str, checkpoint_id: int) -> Any:
        """The application transaction ``(app_id, checkpoint_id)`` and the commit-info tags
        of a checkpoint's commit."""
        return CommitProperties(
            custom_metadata={APP_KEY: app_id, CHECKPOINT_KEY: str(checkpoint_id)},
            app_transactions=[Transaction(app_id, checkpoint_id)])

    @staticmethod
    def part_properties(app_id: str, checkpoint_id: int, suffix: str = PART_SUFFIX) -> Any:
        """The tags of the MERGE that comes first when a checkpoint is committed to a table
        in two commits (a MERGE, then an append of new keys): the application transaction
        ``(app_id + PART_SUFFIX, checkpoint_id)``, so that a replay after a crash between
        the two skips it; the commit info names the checkpoint and ``hub.part``."""
        return CommitProperties(
            custom_metadata={APP_KEY: app_id, CHECKPOINT_KEY: str(checkpoint_id),
                             PART_KEY: suffix.lstrip("#")},
            app_transactions=[Transaction(app_id + suffix, checkpoint_id)])

    @staticmethod
    def maintenance_properties(app_id: str, what: str) -> Any:
        """Commit-info tags of a maintenance commit (no application transaction: it changes
        no row)."""
        return CommitProperties(custom_metadata={APP_KEY: app_id, "hub.maintenance": what})

    def append(self, data: pa.Table | pa.RecordBatchReader, props: Any, *,
               partition_by: list[str], configuration: dict[str, str], target_file_size: int,
               merge_schema: bool = False) -> None:
        """Append ``data`` in one commit; creates the table (with ``partition_by`` and
        ``configuration``) when there is none.  A reader is streamed: deltalake holds about a
        file of ``target_file_size`` at a time."""
        rows = f"{data.num_rows} rows" if isinstance(data, pa.Table) else "rows"
        with delta_errors(f"appending {rows} to table {self.table} at {self.uri}"):
            write_deltalake(self.uri, data, mode="append",
                            partition_by=partition_by or None,
                            configuration=configuration or None,
                            schema_mode="merge" if merge_schema else None,
                            storage_options=self.storage, target_file_size=target_file_size,
                            commit_properties=props)

    def add_files(self, files: list[StagedFile], schema: pa.Schema, props: Any, *,
                  create: bool, configuration: dict[str, str]) -> None:
        """Add the staged data ``files`` (Parquet files in the table's folder, of ``schema``)
        as they are, with their statistics, in one commit carrying ``props``; ``create``:
        the table does not exist yet and this commit creates it (with ``configuration``)."""
        import time

        from deltalake import Schema
        from deltalake.transaction import AddAction, create_table_with_add_actions

        now = int(time.time() * 1000)
        actions = [AddAction(os.path.relpath(f.path, self.uri).replace(os.sep, "/"), f.size,
                             {}, now, True, delta_stats(f)) for f in files]
        rows = sum(f.rows for f in files)
        with delta_errors(f"adding {len(files)} staged files ({rows} rows) to table "
                          f"{self.table} at {self.uri}"):
            if create:
                create_table_with_add_actions(
                    self.uri, Schema.from_arrow(schema), actions, mode="error",
                    configuration=configuration or None, storage_options=self.storage,
                    commit_properties=props)
            else:
                self.delta.create_write_transaction(actions, mode="append",
                                                    schema=self.delta.schema(),
                                                    commit_properties=props)

    def merge(self, source: pa.Table | pa.RecordBatchReader, keys: list[str], props: Any,
              merge_schema: bool,
              bounds: tuple[str, str, str] | None = None) -> dict[str, Any]:
        """One MERGE of ``source`` (the table's columns plus :data:`OP`) by ``keys``: a
        matched delete deletes, another matched row is updated in every column, an unmatched
        row that is no delete is inserted.  A table is held whole by deltalake, and it
        prunes the target's files by the source's key range itself; a reader is streamed
        (read once), and ``bounds`` -- a key column and the SQL literals of its lowest and
        highest value in the source -- prune the target instead.  Returns deltalake's
        metrics."""
        schema = source.schema
        cols = [c for c in schema.names if c != OP]
        on = " AND ".join(f"t.{quote(k)} = s.{quote(k)}" for k in keys)
        if bounds is not None:
            # only target rows within the source's key range can match: said as a condition
            # on the target alone, deltalake skips the files whose statistics lie outside
            column, low, high = bounds
            on += f" AND t.{quote(column)} >= {low} AND t.{quote(column)} <= {high}"
        values = {quote(c): f"s.{quote(c)}" for c in cols}
        streamed = isinstance(source, pa.RecordBatchReader)
        changes = "changes" if streamed else f"{source.num_rows} changes"
        with delta_errors(f"merging {changes} into table {self.table} at {self.uri}"):
            return (self.delta.merge(source, on, source_alias="s", target_alias="t",
                                     merge_schema=merge_schema, commit_properties=props,
                                     streamed_exec=streamed)
                    .when_matched_delete(predicate=f"s.{OP} = 'd'")
                    .when_matched_update(values)
                    .when_not_matched_insert(values, predicate=f"s.{OP} <> 'd'")
                    .execute())

    def held(self, keys: pa.Table) -> np.ndarray:
        """Per row of ``keys`` (key columns), whether the table holds that key.  Reads only
        the key columns of the files whose statistics overlap the range of the first key
        column (none, for a snapshot chunk or new auto-increment keys)."""
        import pyarrow.compute as pc
        import pyarrow.dataset as ds

        n = keys.num_rows
        first = keys.column(0)
        bounds = pc.min_max(first)
        low, high = bounds["min"], bounds["max"]
        if not low.is_valid:
            return np.zeros(n, dtype=bool)
        with delta_errors(f"reading table {self.table} at {self.uri}"):
            column = ds.field(keys.column_names[0])
            existing = self.delta.to_pyarrow_dataset().to_table(
                columns=keys.column_names, filter=(column >= low) & (column <= high))
        if not existing.num_rows:
            return np.zeros(n, dtype=bool)
        if keys.num_columns == 1:
            return pc.is_in(first, value_set=existing.column(0)).to_numpy(zero_copy_only=False)
        at = keys.append_column(_ROW, pa.array(np.arange(n)))
        found = at.join(existing, keys.column_names, join_type="left semi").column(_ROW)
        mask = np.zeros(n, dtype=bool)
        mask[found.to_numpy()] = True
        return mask

    def rewrite_widened(self, widen: dict[str, pa.DataType], partition_by: list[str],
                        target_file_size: int, props: Any) -> int:
        """Rewrite the table with the columns of ``widen`` cast to their wider types, in one
        overwrite commit, streaming a batch at a time.  Returns the number of rows."""
        old = self.schema()
        new = pa.schema([f.with_type(widen[f.name]) if f.name in widen else f for f in old])
        count = 0
        # opened here: deltalake can't open a dataset from inside its own writer's runtime
        with delta_errors(f"reading table {self.table} at {self.uri}"):
            scanner = self.delta.to_pyarrow_dataset().scanner(columns=old.names,
                                                               batch_size=64 * 1024)

        def batches() -> Iterator[pa.RecordBatch]:
            nonlocal count
            for batch in scanner.to_batches():
                count += batch.num_rows
                yield pa.RecordBatch.from_arrays(
                    [c.cast(f.type) for c, f in zip(batch.columns, new)], schema=new)

        reader = pa.RecordBatchReader.from_batches(new, batches())
        with delta_errors(f"rewriting table {self.table} at {self.uri} with wider types"):
            write_deltalake(self.uri, reader, mode="overwrite", schema_mode="overwrite",
                            partition_by=partition_by or None, storage_options=self.storage,
                            target_file_size=target_file_size, commit_properties=props)
        return count

    # -- maintenance -------------------------------------------------------------------------
    def compact(self, target_size: int, props: Any) -> dict[str, Any]:
        """Rewrite small files into files of about ``target_size`` bytes (a commit that
        changes no row; none when there is nothing to compact)."""
        with delta_errors(f"compacting table {self.table} at {self.uri}"):
            return self.delta.optimize.compact(target_size=target_size, commit_properties=props)

    def vacuum(self, retention_s: float) -> list[str]:
        """Delete files no version younger than ``retention_s`` references."""
        hours = math.ceil(retention_s / 3600)  # never sooner than asked
        with delta_errors(f"vacuuming table {self.table} at {self.uri}"):
            return self.delta.vacuum(retention_hours=hours, dry_run=False,
                                     enforce_retention_duration=False)

    def checkpoint_and_clean_log(self) -> None:
        """Write a log checkpoint (readers start from it instead of replaying every commit)
        and delete the log entries older than the table's ``delta.logRetentionDuration``
        that precede it.  Application transactions live on in the checkpoint."""
        with delta_errors(f"checkpointing the log of table {self.table} at {self.uri}"):
            self.delta.create_checkpoint()
            self.delta.cleanup_metadata()

    def app_ids(self) -> set[str]:
        """The application ids with a transaction in the table: those of its latest log
        checkpoint (which keeps them when older log entries are cleaned up) and those the
        commits after it name (``hub.app``).  Local tables only."""
        import glob
        import json

        import pyarrow.parquet as pq

        found: set[str] = set()
        log_dir = os.path.join(self.uri, "_delta_log")
        try:
            with open(os.path.join(log_dir, "_last_checkpoint")) as f:
                version = int(json.load(f)["version"])
        except FileNotFoundError:
            version = None
        if version is not None:
            for path in glob.glob(os.path.join(log_dir, f"{version:020d}.checkpoint*.parquet")):
                txn = pq.read_table(path, columns=["txn"]).column("txn")
                found.update(t["appId"] for t in txn.to_pylist() if t)
        for commit in self.history(HISTORY_LOOKBACK):
            if APP_KEY in commit:
                found.add(str(commit[APP_KEY]))
        return found

    def history(self, limit: int | None = None) -> list[dict[str, Any]]:
        """Commit infos, newest first, their custom metadata among the keys."""
        with delta_errors(f"reading the history of table {self.table} at {self.uri}"):
            return self.delta.history(limit)
