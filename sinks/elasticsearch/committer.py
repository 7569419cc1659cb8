"""Applying change batches to Elasticsearch with versioned, idempotent bulk writes, and the
committer that applies write-ahead-log segments once their checkpoint is durable."""
from __future__ import annotations

import logging
import threading
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from runtime.batch import DELETE, ChangeBatch
from runtime.deadletter import DeadLetterQueue
from runtime.errors import BadRecordError
from runtime.sink import CommitContext
from runtime.versioned import check_versions, last_per_key, runs
from runtime.wal import WalCommitter, segment_runs
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


class Refusals:
    """The writes refused with 409 per table (:class:`RefusedWrites`), counted by any number
    of appliers (thread-safe), and the log lines about them: after each :meth:`report` that
    finds new ones, a warning naming the index, how many writes were refused with a version
    below the document's and an example id (never silent, since such a change is lost), and
    an info line for replays."""

    def __init__(self, delivery: str):
        self.delivery = delivery
        #: table id -> its refused writes
        self.by_table: dict[str, RefusedWrites] = {}
        self._reported: dict[str, tuple[int, int]] = {}  # table -> (replays, stale) logged
        self._lock = threading.Lock()

    def seen(self, table: str, index: str) -> None:
        """``table`` is written to ``index`` (an entry with no refusals yet)."""
        if table not in self.by_table:
            with self._lock:
                self.by_table.setdefault(table, RefusedWrites(index))

    def count(self, table: str, index: str, ids: pa.Array,
              conflicts: list[VersionConflict]) -> None:
        with self._lock:
            entry = self.by_table.setdefault(table, RefusedWrites(index))
            for c in conflicts:
                if c.is_replay:
                    entry.replays += 1
                    continue
                entry.stale += 1
                stored = "not told" if c.current is None else str(c.current)
                entry.example = (f"id {ids[c.position].as_py()!r}: version {c.provided}, "
                                 f"the index has {stored}")

    def report(self) -> None:
        with self._lock:
            for table, entry in self.by_table.items():
                replays, stale = self._reported.get(table, (0, 0))
                if entry.stale > stale:
                    note = ("; at-least-once delivery writes the changes since the last "
                            "checkpoint again after a restart, and refused older versions are "
                            "harmless then" if self.delivery == "at-least-once" else "")
                    log.warning(
                        "elasticsearch: index %s refused %d writes of table %s (%d in all) "
                        "whose version is below the document's, e.g. %s: those changes are "
                        "not in the index; the source's versions went backwards (binlog "
                        "reset, failover to another server?)%s", entry.index,
                        entry.stale - stale, table, entry.stale, entry.example, note)
                if entry.replays > replays:
                    log.info("elasticsearch: index %s already had %d writes of table %s "
                             "(same version: a replay after a restart)", entry.index,
                             entry.replays - replays, table)
                self._reported[table] = (entry.replays, entry.stale)


class Applier:
    """Writes batches (with versions) to their indexes.  Thread-confined: one connection
    (:class:`BulkClient`); several appliers may share one :class:`Refusals`.

    Counts the writes refused with 409 per table (:attr:`refused`) and, after each
    :meth:`apply` that met some, logs them (:meth:`Refusals.report`).  (At-least-once
    delivery writes the changes since the last checkpoint again after a restart, so older
    versions of a key updated twice are refused then, harmlessly: the warning says so in that
    mode.)"""

    def __init__(self, config: ElasticsearchSinkConfig, refusals: Refusals | None = None):
        self.config = config
        self.client = BulkClient(config)
        self.refusals = refusals if refusals is not None else Refusals(config.delivery)

    @property
    def refused(self) -> dict[str, RefusedWrites]:
        """Table id -> its refused writes, since the applier (or its shared
        :class:`Refusals`) started."""
        return self.refusals.by_table

    def apply(self, batches: Iterable[ChangeBatch], dead_letter: DeadLetterQueue) -> set[str]:
        """Apply ``batches`` (each with ``versions``: the batches one writer received, in
        order), merged into runs; returns the indexes written.  Documents the index refuses
        (other than version conflicts) go to ``dead_letter``, which raises unless the
        pipeline tolerates them.  Raises
        :class:`~runtime.errors.TerminalError` when the versions of a key go backwards among
        them (:func:`~runtime.versioned.check_versions`)."""
        return self.apply_runs(runs(batches), dead_letter)

    def apply_runs(self, batches: Iterable[ChangeBatch], dead_letter: DeadLetterQueue
                   ) -> set[str]:
        """:meth:`apply` of runs as they come (e.g. :func:`~runtime.wal.segment_runs`:
        memory is one run); the versions of a key are checked within each run."""
        touched = set()
        try:
            for batch in batches:
                touched.add(self._apply_run(batch, dead_letter))
        finally:
            self.refusals.report()
        return touched

    def _apply_run(self, batch: ChangeBatch, dead_letter: DeadLetterQueue) -> str:
        cfg, schema = self.config, batch.schema
        index = cfg.index_for(schema.table)
        if not schema.primary_key:
            raise BadRecordError(f"elasticsearch: table {schema.table} has no primary key: "
                                 "documents need one for their _id")
        self.client.ensure_index(index, schema)
        self.refusals.seen(schema.table, index)
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
                self.refusals.count(schema.table, index, ids.slice(start, stop - start),
                                    outcome.conflicts)
            for failure in outcome.failures:
                pos = start + failure.position
                record = rows.slice(pos, 1).to_pylist()[0]
                error = BadRecordError(
                    f"elasticsearch: index {index} id {ids[pos].as_py()!r} (table "
                    f"{schema.table}): {failure.status} {failure.reason}")
                dead_letter.report(error, record, origin=f"elasticsearch:{index}")
        return index

    def refresh(self, indexes: set[str]) -> None:
        self.client.refresh(indexes)

    def close(self) -> None:
        self.client.close()


class ElasticsearchCommitter(WalCommitter[Applier]):
    """Applies write-ahead-log segments (see :class:`~runtime.wal.WalCommitter`): up to
    ``apply-threads`` at once, each streamed run by run through an :class:`Applier` of its
    own, deleted once applied.  External versions make the order of segments irrelevant (a
    key in two segments ends at its highest version: the lower one is refused with 409 when it
    comes second) and a re-applied segment a no-op."""

    sink_name = "elasticsearch"

    def __init__(self, config: ElasticsearchSinkConfig):
        super().__init__(config.apply_threads)
        self.config = config
        self._refusals = Refusals(config.delivery)
        self._touched: set[str] = set()
        self._touched_lock = threading.Lock()

    @property
    def refused_writes(self) -> dict[str, RefusedWrites]:
        """Per table, the writes its index refused with 409 since this committer started
        (see :class:`RefusedWrites`)."""
        return self._refusals.by_table

    def gauges(self) -> dict[str, float]:
        """``refused_stale_writes``, ``refused_replayed_writes``: the writes the indexes
        refused with 409, over all tables (per table: :attr:`refused_writes` and the log)."""
        refused = self.refused_writes.values()
        return {"refused_stale_writes": sum(r.stale for r in refused),
                "refused_replayed_writes": sum(r.replays for r in refused)}

    def new_applier(self) -> Applier:
        return Applier(self.config, self._refusals)

    def apply(self, segments: list[str], context: CommitContext) -> None:
        self._touched = set()
        super().apply(segments, context)
        if self._touched and self.config.refresh_after_commit:
            with self.borrow_applier() as applier:
                applier.refresh(self._touched)

    def apply_segment(self, applier: Applier, path: str, context: CommitContext,
                      stop: threading.Event) -> None:
        touched = applier.apply_runs(segment_runs(path, stop=stop), context.dead_letter)
        with self._touched_lock:
            self._touched |= touched
