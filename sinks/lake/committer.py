"""The lake-table committer: one table transaction per table and checkpoint, tagged so that a
replay never applies a checkpoint twice."""
from __future__ import annotations

import dataclasses
import logging
import time
from abc import abstractmethod
from collections.abc import Callable

from runtime.faults import crash_point
from runtime.sink import CommitContext, Committable
from runtime.wal import WalCommitter, WriteAheadLog
from sinks.lake.changes import (TableChanges, key_columns, no_columns, scan,
                                segments_source)
from sinks.lake.config import LakeSinkConfig

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

    Crash points (tests): ``<sink>-table-committed`` after each table's commit (``_2`` ...
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

    # -- WalCommitter -----------------------------------------------------------------------
    def commit(self, committables: list[Committable], context: CommitContext) -> list[Committable]:
        by_checkpoint: dict[int, list[str]] = {}
        for c in committables:
            if c.get("segment"):
                checkpoint = int(c.get("checkpoint") or context.checkpoint_id)
                by_checkpoint.setdefault(checkpoint, []).append(c["segment"])
        for checkpoint in sorted(by_checkpoint):
            segments = [p for p in by_checkpoint[checkpoint] if WriteAheadLog.exists(p)]
            if segments:  # none left: applied and deleted before (a replay)
                self.apply(segments, dataclasses.replace(context, checkpoint_id=checkpoint))
        self._maybe_maintain(context)
        return []

    def apply(self, segments: list[str], context: CommitContext) -> None:
        """Commit the segments of checkpoint ``context.checkpoint_id``, then delete them."""
        checkpoint = context.checkpoint_id
        upsert = self.config.write_mode == "upsert"
        light = segments_source(segments, key_columns if upsert else no_columns)
        tables = scan(segments_source(segments), checkpoint, upsert, f"{self.sink_name} sink",
                      light)
        for i, changes in enumerate(tables):
            self.commit_table(changes, context)
            self._touched[changes.table] = None
            crash_point(f"{self.sink_name}-table-committed" + (f"_{i + 1}" if i else ""),
                        checkpoint)
        crash_point(f"{self.sink_name}-checkpoint-committed", checkpoint)
        for path in segments:
            WriteAheadLog.delete_segment(path)

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
