"""Applying change batches to Elasticsearch with versioned, idempotent bulk writes, and the
committer that applies write-ahead-log segments once their checkpoint is durable."""
from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from runtime.batch import DELETE, ChangeBatch
from runtime.deadletter import DeadLetterQueue
from runtime.errors import BadRecordError
from runtime.sink import CommitContext
from runtime.versioned import check_versions, last_per_key, runs
from runtime.wal import WalCommitter, WriteAheadLog
from sinks.elasticsearch.client import BulkClient, VersionConflict
from sinks.elasticsearch.config import ElasticsearchSinkConfig
from sinks.elasticsearch.types import body_bytes, body_chunks, bulk_lines, document_ids

log = logging.getLogger(__name__)

#: A write whose version is not above the stored one is refused with 409, so a replay (same
#: version) or a late older change is a no-op; a delete leaves a versioned tombstone, so an
#: older write arriving after it is refused too.
VERSION_TYPE = "external"


@dataclass
class RefusedWrites:
    """The writes of one table its index refused with 409 (counted since the applier
    started): ``replays`` had the version the document has (written before: normal after a
    restart), ``stale`` a lower one (or one the answer did not tell): those changes are not in
    the index.  ``example`` names the last stale one (id and versions)."""

    index: str
    replays: int = 0
    stale: int = 0
    example: str = ""


class Applier:
    """Writes batches (with versions) to their indexes.  Thread-confined.

    Counts the writes refused with 409 per table (:attr:`refused`) and, after each
    :meth:`apply` that met some, logs a warning naming the index, how many writes were
    refused with a version below the document's and an example id: never silent, since such
    a change is lost.  (At-least-once delivery writes the changes since the last checkpoint
    again after a restart, so older versions of a key updated twice are refused then,
    harmlessly: the warning says so in that mode.)"""

    def __init__(self, config: ElasticsearchSinkConfig,
                 dead_letter: Callable[[], DeadLetterQueue]):
        self.config = config
        self.client = BulkClient(config)
        self._dead_letter = dead_letter
        #: table id -> its refused writes, since the applier started
        self.refused: dict[str, RefusedWrites] = {}
        self._reported: dict[str, tuple[int, int]] = {}  # table -> (replays, stale) logged

    def apply(self, batches: Iterable[ChangeBatch]) -> set[str]:
        """Apply ``batches`` (each with ``versions``: the batches one writer received, in
        order); returns the indexes written.  Raises :class:`~runtime.errors.TerminalError`
        when the versions of a key go backwards among them
        (:func:`~runtime.versioned.check_versions`)."""
        touched = set()
        try:
            for batch in runs(batches):
                touched.add(self._apply_run(batch))
        finally:
            self._report_refused()
        return touched

    def _count_conflicts(self, table: str, ids: pa.Array,
                         conflicts: list[VersionConflict]) -> None:
        entry = self.refused[table]
        for c in conflicts:
            if c.is_replay:
                entry.replays += 1
                continue
            entry.stale += 1
            stored = "not told" if c.current is None else str(c.current)
            entry.example = (f"id {ids[c.position].as_py()!r}: version {c.provided}, "
                             f"the index has {stored}")

    def _report_refused(self) -> None:
        for table, entry in self.refused.items():
            replays, stale = self._reported.get(table, (0, 0))
            if entry.stale > stale:
                note = ("; at-least-once delivery writes the changes since the last checkpoint "
                        "again after a restart, and refused older versions are harmless then"
                        if self.config.delivery == "at-least-once" else "")
                log.warning(
                    "elasticsearch: index %s refused %d writes of table %s (%d in all) whose "
                    "version is below the document's, e.g. %s: those changes are not in the "
                    "index; the source's versions went backwards (binlog reset, failover to "
                    "another server?)%s", entry.index, entry.stale - stale, table,
                    entry.stale, entry.example, note)
            if entry.replays > replays:
                log.info("elasticsearch: index %s already had %d writes of table %s (same "
                         "version: a replay after a restart)", entry.index,
                         entry.replays - replays, table)
            self._reported[table] = (entry.replays, entry.stale)

    def _apply_run(self, batch: ChangeBatch) -> str:
        cfg, schema = self.config, batch.schema
        index = cfg.index_for(schema.table)
        if not schema.primary_key:
            raise BadRecordError(f"elasticsearch: table {schema.table} has no primary key: "
                                 "documents need one for their _id")
        self.client.ensure_index(index, schema)
        if schema.table not in self.refused:
            self.refused[schema.table] = RefusedWrites(index)
        rows = pa.Table.from_batches([batch.arrow()])
        ids = document_ids(rows, schema, cfg.key_delimiter)
        deletes = np.frombuffer(batch.ops.encode("ascii"), dtype=np.uint8) == ord(DELETE)
        versions = np.asarray(batch.versions, dtype=np.int64)
        check_versions("elasticsearch", schema.table, ids, versions,
                       f"delete index {index} and start the pipeline again with --fresh "
                       f"(a new snapshot)")
        keep = last_per_key(ids, versions)
        if keep is not None:  # only the last change of a key matters
            take = pa.array(keep)
            rows, ids = rows.take(take), ids.take(take)
            deletes, versions = deletes[keep], versions[keep]
        lines = bulk_lines(rows, schema, deletes, versions, index, ids, VERSION_TYPE,
                           cfg.decimal_mapping, cfg.timestamp_mapping, cfg.json_mapping)
        for start, stop in body_chunks(lines, cfg.bulk_max_actions, cfg.bulk_max_size):
            def body_of(positions: list[int] | None, start: int = start, stop: int = stop) -> bytes:
                if positions is None:
                    return body_bytes(lines, start, stop)
                return b"".join(body_bytes(lines, p, p + 1) for p in positions)

            outcome = self.client.bulk(stop - start, body_of)
            if outcome.conflicts:
                self._count_conflicts(schema.table, ids.slice(start, stop - start),
                                      outcome.conflicts)
            for failure in outcome.failures:
                pos = start + failure.position
                record = rows.slice(pos, 1).to_pylist()[0]
                error = BadRecordError(
                    f"elasticsearch: index {index} id {ids[pos].as_py()!r} (table "
                    f"{schema.table}): {failure.status} {failure.reason}")
                self._dead_letter().report(error, record, origin=f"elasticsearch:{index}")
        return index

    def refresh(self, indexes: set[str]) -> None:
        self.client.refresh(indexes)

    def close(self) -> None:
        self.client.close()


class ElasticsearchCommitter(WalCommitter):
    """Applies write-ahead-log segments (see :class:`~runtime.wal.WalCommitter`), one at a
    time; external versions make a re-applied segment a no-op."""

    sink_name = "elasticsearch"

    def __init__(self, config: ElasticsearchSinkConfig,
                 dead_letter: Callable[[], DeadLetterQueue]):
        self.config = config
        self._dead_letter = dead_letter
        self._applier: Applier | None = None

    @property
    def refused_writes(self) -> dict[str, RefusedWrites]:
        """Per table, the writes its index refused with 409 since this committer started
        (see :class:`RefusedWrites`)."""
        return self._applier.refused if self._applier is not None else {}

    def gauges(self) -> dict[str, float]:
        """``refused_stale_writes``, ``refused_replayed_writes``: the writes the indexes
        refused with 409, over all tables (per table: :attr:`refused_writes` and the log)."""
        refused = self.refused_writes.values()
        return {"refused_stale_writes": sum(r.stale for r in refused),
                "refused_replayed_writes": sum(r.replays for r in refused)}

    def apply(self, segments: list[str], context: CommitContext) -> None:
        if self._applier is None:
            self._applier = Applier(self.config, self._dead_letter)
        touched: set[str] = set()
        for path in segments:
            touched |= self._applier.apply(WriteAheadLog.read_segment(path))
            WriteAheadLog.delete_segment(path)
        if touched and self.config.refresh_after_commit:
            self._applier.refresh(touched)

    def close(self) -> None:
        if self._applier is not None:
            self._applier.close()
