"""The files sink writer: change batches into hidden part files, one bucket per table and
partition directory."""
from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable

import numpy as np
import pyarrow as pa

from formats.codec.avro import envelope_record
from formats.file.base import annotated_arrow_schema
from formats.message.base import MessageFormat
from runtime.batch import OP_COLUMN, TS_COLUMN, ChangeBatch
from runtime.errors import BadRecordError, TerminalError
from runtime.fs import encode_segment, filesystem, os_error, path_under
from runtime.schema import SchemaChange, TableSchema, split_table_id
from runtime.sink import Committable, SinkWriter, WriterContext
from runtime.versioned import VersionClock
from sinks.files.bucket import Bucket, PartNamer
from sinks.files.config import FilesSinkConfig
from sinks.files.hive import avro_hive_columns, hive_columns
from sinks.files.partition import UNPARTITIONED, Partition, Partitioner

log = logging.getLogger(__name__)

#: A bucket's buffered rows are written out once they take this much memory: large enough
#: for good Parquet row groups, small enough that many buckets fit in memory.
FLUSH_BYTES = 4 << 20
#: Bound on the rows buffered by one writer over all buckets; above it the biggest buffers
#: are written out early.
MAX_BUFFERED_BYTES = 16 << 20
#: Bound on the part files one writer keeps open; above it the oldest is rolled.
MAX_OPEN_FILES = 100
#: Longest folder name local filesystems (and HDFS by default) take.
MAX_SEGMENT_BYTES = 255


class FilesSinkWriter(SinkWriter):
    """Writes the change batches of one subtask into part files.

    Contract, as Flink's ``FileSink`` writer:

    * rows go to hidden in-progress part files, one open file per table and partition;
    * a file rolls (is closed, becomes *pending*) when its size reaches ``rolling-file-size``,
      at its first write after it has been open ``rolling-interval``, when its table's schema
      changes, and always at :meth:`prepare_commit` (bulk formats can't be resumed);
    * :meth:`prepare_commit` returns every pending file of the checkpoint as
      ``{"kind": "file", "pending": ..., "final": ...}``; with a partition-commit policy,
      every partition that received rows as ``{"kind": "partition", "dir", "end_ms",
      "table", "part"}``; with the ``metastore`` policy, every table that received rows as
      ``{"kind": "table", "table", "dir", "columns"}`` (Hive columns of its part files);
    * :meth:`close` deletes what was not prepared.  No state beyond committables: in-progress
      files are never resumed, so a restore starts with fresh files.

    With a message format the part files hold the batches' messages (encoded when a bucket is
    flushed, a whole batch per encoder call); bad records (a raw value with a line break) go
    to the dead-letter destination.
    """

    def __init__(self, config: FilesSinkConfig, context: WriterContext, *,
                 clock: Callable[[], float] = time.monotonic):
        self._root = config.root
        self._layout = config.layout
        self._fs = filesystem(self._root)
        self._format = config.file_format
        self._messages = isinstance(self._format, MessageFormat)
        self._namer = PartNamer(context.pipeline, context.attempt, context.subtask,
                                config.extension)
        dead_letter = context.dead_letter
        origin = f"files:{self._root}"

        def on_bad_record(error: BadRecordError, record: object) -> None:
            dead_letter.report(error, record, origin)

        self._on_bad = on_bad_record
        self._partitioner = Partitioner(config.partition_format, config.partition_time_column,
                                        config.partition_time_zone)
        self._rolling_size = config.rolling_file_size
        self._rolling_interval = config.rolling_interval
        # partitions are committed (by _SUCCESS and/or in the metastore) once complete
        self._commit_partitions = bool(config.commit_policies) and bool(config.partition_format)
        self._metastore = "metastore" in config.commit_policies
        self._hive_columns: dict[str, list[tuple[str, str]]] = {}  # table id -> Hive columns
        # table id -> (schema, table parameters) of message formats (avro: the Avro schema)
        self._hive_messages: dict[str, tuple[TableSchema, dict[str, str]]] = {}
        self._tables_touched: dict[str, str] = {}  # table id -> its folder, since the last prepare
        self._clock = clock
        self._versions = VersionClock()  # seq of events whose source gives no order
        self._seq_column = config.seq_column
        self._buckets: dict[tuple[str, str], Bucket] = {}  # (table id, directory) -> bucket
        self._table_dirs: dict[str, str] = {}
        self._partition_dirs: dict[tuple[str, str], str] = {}  # checked to be below their table
        self._schemas: dict[str, tuple[TableSchema, pa.Schema]] = {}  # table id -> file schema
        self._pending: list[Committable] = []  # files closed since the last prepare_commit
        # partition directory -> (end_ms, table id, partition folder), since the last prepare
        self._touched: dict[str, tuple[int, str, str]] = {}
        # table id -> file bytes per in-memory byte of its last finished part (size estimates;
        # until a part of the table is finished, Bucket.size_estimate learns from the part)
        self._ratios: dict[str, float] = {}
        self._buffered = 0  # bytes buffered over all buckets
        self._open: dict[Bucket, None] = {}  # buckets with an open part file, oldest first

    # -- SinkWriter ---------------------------------------------------------------------------
    def write(self, batch: ChangeBatch) -> None:
        if not len(batch):
            return
        try:
            self._write(batch)
        except OSError as exc:
            raise os_error(f"files sink: writing under {self._root} failed", exc) from exc

    def write_schema_change(self, change: SchemaChange) -> None:
        # New rows get new files with the new schema; a part file holds one schema.
        for key in [k for k in self._buckets if k[0] == change.table]:
            self._roll(self._buckets.pop(key))

    def prepare_commit(self, checkpoint_id: int) -> list[Committable]:
        try:
            for bucket in self._buckets.values():
                self._roll(bucket)
        except OSError as exc:
            raise os_error(f"files sink: closing part files under {self._root} failed",
                           exc) from exc
        self._buckets.clear()
        committables = self._pending
        committables += [{"kind": "table", "table": t, "dir": d,
                          "columns": [list(c) for c in self._hive_columns[t]],
                          "parameters": self._hive_messages[t][1] if t in self._hive_messages
                          else {}}
                         for t, d in self._tables_touched.items()]
        committables += [{"kind": "partition", "dir": d, "end_ms": end, "table": t, "part": p}
                         for d, (end, t, p) in self._touched.items()]
        self._pending, self._touched, self._tables_touched = [], {}, {}
        return committables

    def close(self) -> None:
        for bucket in self._buckets.values():
            bucket.discard()
        self._buckets.clear()
        self._buffered = 0
        self._open.clear()
        for c in self._pending:  # closed by rolling but never prepared: nobody will commit them
            try:
                self._fs.remove(c["pending"])
            except OSError as exc:
                log.warning("files sink: could not remove unprepared file %s: %s",
                            c["pending"], exc)
        self._pending = []

    # -- internals ------------------------------------------------------------------------------
    def _write(self, batch: ChangeBatch) -> None:
        table_id = batch.table
        parts: list[tuple[Partition, pa.Table]] | list[tuple[Partition, ChangeBatch]]
        if self._messages:
            parts = self._message_parts(batch)
            if self._metastore:
                self._message_columns(batch.schema)
        else:
            if self._seq_column:
                batch = self._versions.stamp(batch)
            parts = self._partitioner.split(self._annotated(batch), table_id)
        now = self._clock()
        table_dir = self._table_dir(table_id)
        for partition, rows in parts:
            directory = (self._partition_dir(table_id, table_dir, partition.dir)
                         if partition.dir else table_dir)
            key = (table_id, directory)
            bucket = self._buckets.get(key)
            if bucket is not None and not _same_schema(bucket.schema, rows.schema):
                self._roll(bucket)  # a schema change we were not told about: same remedy
                bucket = None
            if bucket is None:
                bucket = self._buckets[key] = Bucket(table_id, directory, rows.schema,
                                                     self._format, self._namer, self._fs,
                                                     self._on_bad)
            elif bucket.started is not None and now - bucket.started >= self._rolling_interval:
                self._roll(bucket)
            self._buffered += bucket.append(rows, now)
            if self._commit_partitions and partition.end_ms is not None:
                known = self._touched.get(directory)
                if known is None or partition.end_ms > known[0]:
                    self._touched[directory] = (partition.end_ms, table_id, partition.dir)
            if bucket.buffered_bytes >= FLUSH_BYTES:
                self._flush(bucket)
            if bucket.size_estimate(self._ratios.get(table_id)) >= self._rolling_size:
                self._roll(bucket)
        if self._metastore:
            self._tables_touched[table_id] = table_dir
        self._bound_memory()

    def _annotated(self, batch: ChangeBatch) -> pa.Table:
        """The batch's changelog table (rows, ``op``, ``ts_ms`` and, unless ``seq-column`` is
        empty, ``seq``: the events' versions, increasing per key in source order, so ``batch``
        has versions) with each column's logical type in its field metadata, so readers of the
        files (Parquet keeps it) get TIMESTAMP(3) or JSON back exactly."""
        schema = batch.schema
        known = self._schemas.get(schema.table)
        if known is None or (known[0] is not schema and known[0] != schema):
            arrow = annotated_arrow_schema(schema)
            meta = [pa.field(OP_COLUMN, pa.string()), pa.field(TS_COLUMN, pa.int64())]
            if self._seq_column:
                meta.append(pa.field(self._seq_column, pa.int64(), nullable=False))
            clash = [f.name for f in meta if f.name in schema.names]
            if clash:  # the file would hold two columns of that name
                remedy = ("set seq-column to another name" if clash[0] == self._seq_column
                          else "write it with a message format such as debezium-json")
                raise TerminalError(f"files sink: table {schema.table} has a column named "
                                    f"{clash[0]!r}, which changelog files use for change "
                                    f"metadata; {remedy}")
            arrow = pa.schema(list(arrow) + meta)
            known = self._schemas[schema.table] = (schema, arrow)
            if self._metastore:
                self._hive_columns[schema.table] = hive_columns(arrow, schema.table)
        columns = batch.changelog_table().columns
        if self._seq_column:
            columns.append(pa.array(np.asarray(batch.versions, dtype=np.int64)))
        return pa.Table.from_arrays(columns, schema=known[1])

    def _message_columns(self, schema: TableSchema) -> None:
        """Hive columns and the ``avro.schema.literal`` of the avro format's envelopes of
        ``schema`` (the only message format the metastore policy takes)."""
        known = self._hive_messages.get(schema.table)
        if known is not None and (known[0] is schema or known[0] == schema):
            return
        record = envelope_record(schema)
        self._hive_columns[schema.table] = avro_hive_columns(record, schema.table)
        self._hive_messages[schema.table] = (schema, {"avro.schema.literal": json.dumps(record)})

    def _message_parts(self, batch: ChangeBatch) -> list[tuple[Partition, ChangeBatch]]:
        """The batch split by partition (message formats: the bucket keeps change batches)."""
        p = self._partitioner
        if p.pattern is None:
            return [(UNPARTITIONED, batch)]
        if p.column in batch.schema.names:
            times = batch.arrow().column(p.column)
        elif p.column == TS_COLUMN:
            times = batch.ts_ms_array().cast(pa.int64())
        else:
            times = None  # groups() names the missing column
        table = pa.table({p.column: times}) if times is not None else pa.table({})
        groups = p.groups(table, batch.table)
        if len(groups) == 1:
            return [(groups[0][0], batch)]
        return [(partition, _take(batch, idx)) for partition, idx in groups]

    def _flush(self, bucket: Bucket) -> None:
        self._buffered -= bucket.buffered_bytes
        bucket.flush()
        if bucket.is_open and bucket not in self._open:
            self._open[bucket] = None
            if len(self._open) > MAX_OPEN_FILES:
                # a backfill over many partitions must not run out of file descriptors:
                # the part opened first is most likely of a partition that is done
                self._roll(next(iter(self._open)))

    def _roll(self, bucket: Bucket) -> None:
        self._buffered -= bucket.buffered_bytes
        self._open.pop(bucket, None)
        committable = bucket.close()
        if committable is not None:
            self._pending.append(committable)
            if bucket.last_ratio:
                self._ratios[bucket.table_id] = bucket.last_ratio

    def _bound_memory(self) -> None:
        if self._buffered <= MAX_BUFFERED_BYTES:
            return
        for bucket in sorted(self._buckets.values(), key=lambda b: -b.buffered_bytes):
            self._flush(bucket)
            if self._buffered <= MAX_BUFFERED_BYTES // 2:
                break

    def _table_dir(self, table_id: str) -> str:
        """``{root}/{db}/{table}`` (or the ``layout``'s folders), each name one path segment
        (:func:`encode_segment`: table names are data, and must not lead the files out of
        ``root``)."""
        known = self._table_dirs.get(table_id)
        if known is None:
            try:
                db, name = split_table_id(table_id)
                segments = _table_segments(self._layout, db, name)
            except ValueError as exc:  # a malformed id or an empty name
                raise TerminalError(f"files sink: table {table_id!r} has no folder: {exc}") \
                    from None
            too_long = [s for s in segments if len(s.encode()) > MAX_SEGMENT_BYTES]
            if too_long:  # the filesystem would refuse it on every retry
                raise TerminalError(f"files sink: table {table_id!r}: folder name "
                                    f"{too_long[0][:40]!r}... is longer than "
                                    f"{MAX_SEGMENT_BYTES} bytes; route the table to a shorter "
                                    f"name")
            known = self._table_dirs[table_id] = self._under_root(table_id, *segments)
        return known

    def _partition_dir(self, table_id: str, table_dir: str, partition: str) -> str:
        key = (table_dir, partition)
        known = self._partition_dirs.get(key)
        if known is None:  # checked once per partition, not per batch
            try:
                known = path_under(table_dir, partition)
            except ValueError:
                raise TerminalError(f"files sink: partition {partition!r} of table "
                                    f"{table_id!r} is not a folder below {table_dir}; "
                                    f"refused") from None
            if len(self._partition_dirs) > 4096:  # bounded: a backfill touches many
                self._partition_dirs.clear()
            self._partition_dirs[key] = known
        return known

    def _under_root(self, table_id: str, *parts: str) -> str:
        try:
            return path_under(self._root, *parts)
        except ValueError:
            raise TerminalError(f"files sink: table {table_id!r} would be written outside "
                                f"{self._root} (at {os.path.join(self._root, *parts)}); "
                                f"refused") from None


def _table_segments(layout: str, db: str, name: str) -> list[str]:
    """The folder names of table ``db.name`` below the root in ``layout`` (see the config)."""
    if layout == "key-value":
        return [f"db={encode_segment(db or 'default')}", f"table={encode_segment(name)}"]
    if layout == "warehouse":
        return [f"{encode_segment(db or 'default')}.db", encode_segment(name)]
    return [encode_segment(db), encode_segment(name)] if db else [encode_segment(name)]


def _same_schema(a: pa.Schema | TableSchema, b: pa.Schema | TableSchema) -> bool:
    if a is b:
        return True
    if isinstance(a, pa.Schema) and isinstance(b, pa.Schema):
        return a.equals(b, check_metadata=True)
    return a == b


def _take(batch: ChangeBatch, idx: np.ndarray) -> ChangeBatch:
    """The events ``idx`` (ascending) of ``batch``: columns taken with Arrow, before images
    (a list) and positions per event."""
    take = pa.array(idx)
    ops = np.frombuffer(batch.ops.encode("ascii"), "S1")[idx].tobytes().decode("ascii")
    before = [batch.before[i] for i in idx] if batch.before is not None else None
    positions = [batch.positions[i] for i in idx] if batch.positions is not None else None
    versions = np.asarray(batch.versions)[idx] if batch.versions is not None else None
    return ChangeBatch(batch.schema, ops, arrow=batch.arrow().take(take), before=before,
                       ts_ms=batch.ts_ms_array().take(take), positions=positions,
                       versions=versions)
