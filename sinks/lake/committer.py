"""The lake-table committer: one table transaction per table and checkpoint, tagged so that a
replay never applies a checkpoint twice."""
from __future__ import annotations

import dataclasses
import logging
import os
import time
from abc import abstractmethod
from collections.abc import Callable, Iterator

from runtime.batch import ChangeBatch
from runtime.faults import crash_point
from runtime.sink import CommitContext, Committable
from runtime.wal import WalCommitter, WriteAheadLog
from sinks.lake.changes import (TableChanges, key_columns, no_columns, scan,
                                segments_source)
from sinks.lake.config import LakeSinkConfig
from sinks.lake.staging import (StagedFile, discard_except, forget, read_staged,
                                read_staged_keys, staging_root)

log = logging.getLogger(__name__)


class LakeCommitter(WalCommitter):
    """Commits the write-ahead-log segments of :class:`~sinks.lake.writer.LakeSinkWriter`.

    Per checkpoint, in ascending order (a checkpoint whose store failed is committed with a
    later one, still as its own transactions): scan its segments (one per writer) once,
    reading only their ops, versions and key columns, giving one :class:`TableChanges` per
    table (:func:`~sinks.lake.changes.scan`), and hand each to :meth:`commit_table`, which
    streams the table's rows from the segments as its format needs them (memory: about a
    record batch plus what the format holds, not the checkpoint); once every table is
    committed, delete the segments.  A crash
    anywhere replays the checkpoint from its segments, and :meth:`commit_table` skips the
    tables that already hold it, so each table gets at most one transaction per checkpoint.

    Every ``maintenance-interval`` (after a commit) :meth:`maintain` runs for the tables
    committed since its last run.

    Snapshot reads and inserts the writers staged as data files (:mod:`sinks.lake.staging`)
    go to :meth:`commit_files` with their table's segment changes; once the checkpoint is
    committed their side records are deleted (and the data files whose rows were merged
    instead of added).  At restore, staged files no restored committable names are deleted.

    Crash points (tests): ``<sink>-files-staged`` before the commit of a table with staged
    files, ``<sink>-table-committed`` after each table's commit (``_2`` ...
    for the second ... table of a checkpoint: ``<sink>-table-committed:3`` kills after the
    first table of checkpoint 3, before the second), ``<sink>-checkpoint-committed`` after
    the last, before the segments are deleted, ``<sink>-maintained`` after maintenance.
    """

    sink_name: str = "lake"

    def __init__(self, config: LakeSinkConfig, *, clock: Callable[[], float] = time.monotonic):
        self.config = config
        self._clock = clock
        self._maintained_at = clock()
        self._touched: dict[str, None] = {}

    # -- what a format implements --------------------------------------------------------------
    @abstractmethod
    def commit_table(self, changes: TableChanges, context: CommitContext) -> None:
        """Commit ``changes`` (checkpoint ``changes.checkpoint_id``) as one transaction of the
        table, tagged with :meth:`app_id` and the checkpoint id; a no-op when the table holds
        that checkpoint already (a replay).  Upsert (``changes.collapsed``): the table's rows
        of every changed key are replaced by the ``upserts`` rows; append: the table gains
        the ``changelog`` rows.  Rows come from ``changes.pieces(kind)`` (streamed from the
        segments; ``changes.read(kind)`` when the format needs them whole).  Creates the
        table, adds columns, as needed."""

    def maintain(self, tables: list[str], context: CommitContext) -> None:
        """Compact small files and delete files unreferenced for longer than ``retention``
        in ``tables`` (table ids).  Default: nothing."""

    def existing_output(self, pipeline: str) -> list[str]:
        """One short line per table that holds commits of an earlier job of ``pipeline``
        through this sink (app ids starting with :meth:`app_prefix`).  Default: none."""
        return []

    # -- tags -----------------------------------------------------------------------------------
    @classmethod
    def app_prefix(cls, pipeline: str) -> str:
        """What the app ids of every job of ``pipeline`` through this sink start with."""
        return f"hub:{pipeline}:{cls.sink_name}:"

    @classmethod
    def app_id(cls, context: CommitContext) -> str:
        """The application id commits of this job carry (with the checkpoint id as version):
        pipeline, sink and job id, so that a fresh start's checkpoint 1 is never taken for an
        earlier run's."""
        return f"{cls.app_prefix(context.pipeline)}{context.job_id}"

    # -- staged data files ----------------------------------------------------------------------
    def commit_files(self, files: list[StagedFile], changes: TableChanges | None,
                     segments: list[str], context: CommitContext) -> bool:
        """Commit checkpoint ``context.checkpoint_id`` of a table some of whose snapshot reads
        and inserts the writers staged as data files (``files``), with its segment changes
        (``changes``, None when it has none; ``segments``: the checkpoint's segments), as
        :meth:`commit_table` would commit them all; a no-op when the table holds the
        checkpoint already.  A format that can add the files as they are does so when their
        keys collide with nothing (see :mod:`sinks.lake.staging`).  Returns False when the
        files were added, True when their rows were merged instead (the files are garbage
        once the checkpoint is committed).  Default: merged, through :meth:`commit_table`."""
        self.commit_table(self.merged_changes(files, segments, context.checkpoint_id), context)
        return True

    def merged_changes(self, files: list[StagedFile], segments: list[str],
                       checkpoint: int) -> TableChanges:
        """The changes of ``files``' table in the checkpoint: the staged rows (read back) and
        the table's changes in ``segments``, collapsed in source order (the slower, general
        path, for staged keys that collide with something)."""
        table = files[0].table
        upsert = self.config.write_mode == "upsert"
        segs = segments_source(segments)
        light_segs = segments_source(segments, key_columns)

        def source() -> Iterator[ChangeBatch]:
            for f in files:
                yield from read_staged(f)
            for b in segs():
                if b.table == table:
                    yield b

        def light() -> Iterator[ChangeBatch]:  # keys only: side records, key columns
            for f in files:
                yield from read_staged_keys(f)
            for b in light_segs():
                if b.table == table:
                    yield b

        (changes,) = scan(source, checkpoint, upsert, f"{self.sink_name} sink", light)
        return changes

    # -- WalCommitter -----------------------------------------------------------------------
    def commit(self, committables: list[Committable], context: CommitContext) -> list[Committable]:
        by_checkpoint: dict[int, tuple[list[str], list[StagedFile]]] = {}
        for c in committables:
            if not (c.get("segment") or c.get("staged")):
                continue
            checkpoint = int(c.get("checkpoint") or context.checkpoint_id)
            segments, staged = by_checkpoint.setdefault(checkpoint, ([], []))
            if c.get("segment"):
                segments.append(c["segment"])
            staged.extend(StagedFile.from_dict(f) for f in c.get("staged") or ())
        for checkpoint in sorted(by_checkpoint):
            segments, staged = by_checkpoint[checkpoint]
            segments = [p for p in segments if WriteAheadLog.exists(p)]
            staged = [f for f in staged if os.path.exists(f.side)]
            if segments or staged:  # none left: applied and deleted before (a replay)
                self.apply(segments, dataclasses.replace(context, checkpoint_id=checkpoint),
                           staged)
        self._maybe_maintain(context)
        return []

    def recover(self, committables: list[Committable], context: CommitContext) -> list[Committable]:
        if context.state_dir:
            keep = [StagedFile.from_dict(f) for c in committables for f in c.get("staged") or ()]
            root = staging_root(context.state_dir, context.pipeline, self.sink_name)
            for path in discard_except(root, keep):
                log.info("%s sink: deleted staged file %s, prepared after the restored "
                         "checkpoint", self.sink_name, path)
        return super().recover(committables, context)

    def apply(self, segments: list[str], context: CommitContext,
              staged: list[StagedFile] | None = None) -> None:
        """Commit the segments and staged files of checkpoint ``context.checkpoint_id``, then
        delete the segments and the staged files' side records."""
        checkpoint = context.checkpoint_id
        upsert = self.config.write_mode == "upsert"
        tables: list[TableChanges] = []
        if segments:
            light = segments_source(segments, key_columns if upsert else no_columns)
            tables = scan(segments_source(segments), checkpoint, upsert,
                          f"{self.sink_name} sink", light)
        by_table = {t.table: t for t in tables}
        files: dict[str, list[StagedFile]] = {}
        for f in staged or ():
            files.setdefault(f.table, []).append(f)
        order = list(by_table) + [t for t in files if t not in by_table]
        merged: list[StagedFile] = []
        for i, table in enumerate(order):
            if table in files:
                crash_point(f"{self.sink_name}-files-staged", checkpoint)
                if self.commit_files(files[table], by_table.get(table), segments, context):
                    merged.extend(files[table])
            else:
                self.commit_table(by_table[table], context)
            self._touched[table] = None
            crash_point(f"{self.sink_name}-table-committed" + (f"_{i + 1}" if i else ""),
                        checkpoint)
        crash_point(f"{self.sink_name}-checkpoint-committed", checkpoint)
        for path in segments:
            WriteAheadLog.delete_segment(path)
        forget(staged or (), merged)

    def _maybe_maintain(self, context: CommitContext) -> None:
        interval = self.config.maintenance_interval
        if not interval or not self._touched or self._clock() - self._maintained_at < interval:
            return
        tables = list(self._touched)
        started = self._clock()
        self.maintain(tables, context)
        self._touched.clear()
        self._maintained_at = self._clock()
        log.info("%s sink: maintenance of %d table(s) took %.1fs", self.sink_name, len(tables),
                 self._maintained_at - started)
        crash_point(f"{self.sink_name}-maintained", context.checkpoint_id)
