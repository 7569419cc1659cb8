"""Applying change batches to Elasticsearch with versioned, idempotent bulk writes, and the
committer that applies write-ahead-log segments once their checkpoint is durable."""
from __future__ import annotations

import logging
from collections.abc import Callable, Iterable

import numpy as np
import pyarrow as pa

from runtime.batch import DELETE, ChangeBatch
from runtime.deadletter import DeadLetterQueue
from runtime.errors import BadRecordError
from runtime.sink import CommitContext
from runtime.versioned import last_per_key, runs
from runtime.wal import WalCommitter, WriteAheadLog
from sinks.elasticsearch.client import BulkClient
from sinks.elasticsearch.config import ElasticsearchSinkConfig
from sinks.elasticsearch.types import body_bytes, body_chunks, bulk_lines, document_ids

log = logging.getLogger(__name__)

#: A write whose version is not above the stored one is refused with 409, so a replay (same
#: version) or a late older change is a no-op; a delete leaves a versioned tombstone, so an
#: older write arriving after it is refused too.
VERSION_TYPE = "external"


class Applier:
    """Writes batches (with versions) to their indexes.  Thread-confined."""

    def __init__(self, config: ElasticsearchSinkConfig,
                 dead_letter: Callable[[], DeadLetterQueue]):
        self.config = config
        self.client = BulkClient(config)
        self._dead_letter = dead_letter

    def apply(self, batches: Iterable[ChangeBatch]) -> set[str]:
        """Apply ``batches`` (each with ``versions``); returns the indexes written."""
        touched = set()
        for batch in runs(batches):
            touched.add(self._apply_run(batch))
        return touched

    def _apply_run(self, batch: ChangeBatch) -> str:
        cfg, schema = self.config, batch.schema
        index = cfg.index_for(schema.table)
        if not schema.primary_key:
            raise BadRecordError(f"elasticsearch: table {schema.table} has no primary key: "
                                 "documents need one for their _id")
        self.client.ensure_index(index, schema)
        rows = pa.Table.from_batches([batch.arrow()])
        ids = document_ids(rows, schema, cfg.key_delimiter)
        deletes = np.frombuffer(batch.ops.encode("ascii"), dtype=np.uint8) == ord(DELETE)
        versions = np.asarray(batch.versions, dtype=np.int64)
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

            for failure in self.client.bulk(stop - start, body_of):
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
