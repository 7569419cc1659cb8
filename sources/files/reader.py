"""Reads the files assigned to one subtask, one batch per poll."""
from __future__ import annotations

import dataclasses
import json
import logging
import os
from collections import deque
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from formats.file.base import FileFormat, FormatReader, ReadChunk
from formats.file.messages import MessageChunk, MessageFileReader
from formats.message.base import MessageFormat
from runtime.batch import CREATE, OPS, ChangeBatch
from runtime.deadletter import record_id
from runtime.errors import BadRecordError, HubError, TerminalError
from runtime.fs import filesystem, is_unreachable, os_error
from runtime.schema import SchemaChange, TableSchema
from runtime.source import InputStatus, ReaderContext, ReaderOutput, SourceReader
from sources.files.config import FilesSourceConfig
from sources.files.split import FileSplit
from sources.files.types import event_time_ms, read_schema

log = logging.getLogger(__name__)

_OPS = pa.array(list(OPS))


class FilesReader(SourceReader):
    """Reads its files one after the other, asking for the next when one is done.

    Each :meth:`poll_next` reads one batch (about ``batch-size`` rows: file I/O and one Arrow
    parse, bounded work) and then moves the split's progress past it, so
    :meth:`snapshot_state` between polls is exact: a restored reader reads on from the first
    record not emitted.  Bad records go to the dead-letter queue (or stop the pipeline);
    skipped ones count as read.  A file on HDFS is copied to a local temporary file when its
    split starts (formats read local files) and the copy is deleted when it is done.

    With a message format, a poll decodes one block of messages (one decoder call) and
    emits its batches and schema changes in file order; a message that can't be decoded is
    one bad record naming the file, its line and byte offset.  ``table`` is the table of
    messages that name none.
    """

    def __init__(self, context: ReaderContext, config: FilesSourceConfig,
                 fmt: FileFormat | MessageFormat, table: str):
        self.context = context
        self.config = config
        self.format = fmt
        self.table = table
        self.queue: deque[FileSplit] = deque()
        self.current: FileSplit | None = None
        self.file: FormatReader | MessageFileReader | None = None
        self.requested = False
        self.no_more = False
        self._spool: str | None = None  # local copy of the current remote file
        self._schemas: dict[str, tuple[TableSchema, pa.Schema, bool]] = {}

    # -- SourceReader -------------------------------------------------------------------------
    def start(self) -> None:
        self._request()

    def add_splits(self, splits: list) -> None:
        self.queue.extend(splits)
        self.requested = False

    def notify_no_more_splits(self) -> None:
        self.no_more = True

    def snapshot_state(self, checkpoint_id: int) -> list[FileSplit]:
        # copies: the splits keep moving after the checkpoint took them
        owned = ([self.current] if self.current else []) + list(self.queue)
        return [dataclasses.replace(s) for s in owned]

    def poll_next(self, output: ReaderOutput) -> InputStatus:
        if self.current is None and not self._next_split():
            if self.no_more:
                return InputStatus.END_OF_INPUT
            self._request()
            return InputStatus.NOTHING_AVAILABLE
        split = self.current
        assert split is not None and self.file is not None
        try:
            chunk = self.file.read()
        except (OSError, pa.ArrowException) as exc:
            if is_unreachable(exc):  # the store, not the file: worth reading again
                raise os_error(f"files source: reading {split.path} failed", exc) from exc
            raise TerminalError(f"files source: reading {split.path} failed: {exc}") from exc
        if chunk is None:
            self._finish(output)
        elif isinstance(chunk, MessageChunk):
            self._emit_messages(split, chunk, output)
        else:
            self._emit(split, chunk, output)
        return InputStatus.MORE_AVAILABLE

    def close(self) -> None:
        if self.file is not None:
            self.file.close()
            self.file = None
        self._drop_spool()

    def _drop_spool(self) -> None:
        if self._spool is not None:
            try:
                os.remove(self._spool)
            except OSError as exc:
                log.warning("files source: could not delete local copy %s: %s", self._spool, exc)
            self._spool = None

    # -- splits -------------------------------------------------------------------------------
    def _request(self) -> None:
        if not self.requested and not self.no_more:
            self.requested = True
            self.context.send_split_request()

    def _next_split(self) -> bool:
        """Open the next queued file; False when there is none."""
        while self.queue:
            split = self.queue.popleft()
            try:
                local = self._local(split.path)
                self.file = self._open(split, local)
            except (OSError, pa.ArrowException) as exc:
                self._drop_spool()
                if is_unreachable(exc):  # the store, not the file: worth opening again
                    raise os_error(f"files source: reading {split.path} failed", exc) from exc
                # a file gone or unreadable (not a Parquet file...) is one bad record
                self._bad(BadRecordError(f"files source: can't read {split.path}: {exc}"), None,
                          split.path)
                log.warning("files source: skipped unreadable file %s", split.path)
                continue
            self.current = split
            return True
        return False

    def _open(self, split: FileSplit, local: str) -> FormatReader | MessageFileReader:
        def on_bad_record(err: BadRecordError, rec: Any, p: str = split.path) -> None:
            self._bad(err, rec, p)

        if isinstance(self.format, MessageFormat):
            return self.format.open_file_reader(
                local, split.progress, table=self.table, timestamp_ms=split.mtime_ms,
                batch_rows=self.config.batch_size, on_bad_record=on_bad_record)
        _, arrow, _ = self._schema(split)
        return self.format.open_reader(local, arrow, split.progress,
                                       batch_rows=self.config.batch_size,
                                       on_bad_record=on_bad_record)

    def _local(self, path: str) -> str:
        """``path`` itself, or for a remote file a local copy (deleted with the split)."""
        local, temporary = filesystem(path).local_copy(path)
        if temporary:
            self._spool = local
        return local

    def _finish(self, output: ReaderOutput) -> None:
        assert self.current is not None
        self.close()
        split_id, self.current = self.current.split_id, None
        output.split_finished(split_id)
        if not self.queue:
            self._request()

    def _schema(self, split: FileSplit) -> tuple[TableSchema, pa.Schema, bool]:
        """(table schema, Arrow read schema, has changelog columns) of a split, cached."""
        if split.schema is None:
            raise HubError(f"files source: split {split.split_id} carries no schema")
        key = json.dumps(split.schema, sort_keys=True)
        if key not in self._schemas:
            schema = TableSchema.from_dict(split.schema)
            self._schemas[key] = (schema, *read_schema(schema, self.format.named_columns))
        return self._schemas[key]

    def _bad(self, error: BadRecordError, record: Any, path: str) -> None:
        if isinstance(record, bytes):
            record = record.decode("utf-8", "replace")
        origin = f"files:{path}"
        # The file and the line's content name the record: stable across restarts, so the
        # error line's id can be given to --skip-record.
        self.context.dead_letter.report(error, record, origin,
                                        record_id=record_id(origin, None, record))

    # -- batches ------------------------------------------------------------------------------
    def _emit(self, split: FileSplit, chunk: ReadChunk, output: ReaderOutput) -> None:
        schema, _, changelog = self._schema(split)
        rb = chunk.batch
        ncols = len(schema.columns)
        ops: str | None = None
        if changelog and rb.num_rows and rb.column(ncols).null_count < rb.num_rows:
            rb, ops = self._changelog_ops(split, rb, ncols)
        n = rb.num_rows
        if n:
            data = pa.RecordBatch.from_arrays(rb.columns[:ncols], schema=schema.arrow_schema)
            batch = ChangeBatch(schema, ops or CREATE * n, arrow=data,
                                ts_ms=self._ts(split, schema, rb, changelog))
            output.collect(batch, split.split_id)
        split.progress = chunk.progress
        split.rows_read += n

    def _emit_messages(self, split: FileSplit, chunk: MessageChunk,
                       output: ReaderOutput) -> None:
        col = self.config.event_time_column
        n = 0
        for element in chunk.elements:
            if isinstance(element, SchemaChange):
                output.collect_schema_change(element, split.split_id)
                continue
            if col is not None:
                element = self._event_time(split, element, col)
            output.collect(element, split.split_id)
            n += len(element)
        split.progress = chunk.progress
        split.rows_read += n

    @staticmethod
    def _event_time(split: FileSplit, batch: ChangeBatch, col: str) -> ChangeBatch:
        """``batch`` with its event times from column ``col`` (nulls: the message's time)."""
        if col not in batch.schema.names:
            raise HubError(f"files source: {split.path}: table {batch.table} has no column "
                           f"{col!r} (event-time-column)")
        column = batch.arrow().column(batch.schema.index(col))
        try:
            ts = event_time_ms(column)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            raise HubError(f"files source: {split.path}: column {col!r} of table {batch.table} "
                           f"is {batch.schema.column(col).type}; an event-time column must be "
                           f"a TIMESTAMP, TIMESTAMP_LTZ, DATE or integer (epoch ms)") from None
        return ChangeBatch(batch.schema, batch.ops, arrow=batch.arrow(), before=batch.before,
                           ts_ms=ts.fill_null(batch.ts_ms_array().cast(pa.int64())),
                           positions=batch.positions, versions=batch.versions)

    def _changelog_ops(self, split: FileSplit, rb: pa.RecordBatch,
                       ncols: int) -> tuple[pa.RecordBatch, str]:
        """The ``op`` column as an ops string (rows with another op are bad records)."""
        op = rb.column(ncols).fill_null(CREATE)
        valid = pc.is_in(op, value_set=_OPS)
        if not pc.all(valid).as_py():
            bad = np.flatnonzero(~valid.to_numpy(zero_copy_only=False))
            for i in bad:
                row = rb.slice(int(i), 1).to_pylist()[0]
                self._bad(BadRecordError(
                    f"{split.path}: row {split.rows_read + int(i)}: op {row['op']!r} is not one "
                    f"of {', '.join(OPS)}"), row, split.path)
            rb = rb.filter(valid)
            op = rb.column(ncols).fill_null(CREATE)
        # every op is one ASCII character: the string data buffer is the ops string
        offsets = np.frombuffer(op.buffers()[1], np.int32, len(op) + 1, op.offset * 4)
        data = op.buffers()[2]
        ops = data.to_pybytes()[offsets[0]:offsets[-1]].decode("ascii") if len(op) else ""
        return rb, ops

    def _ts(self, split: FileSplit, schema: TableSchema, rb: pa.RecordBatch,
            changelog: bool) -> int | pa.Array:
        col = self.config.event_time_column
        if col is not None:
            return event_time_ms(rb.column(schema.index(col))).fill_null(split.mtime_ms)
        if changelog:
            ts = rb.column(len(schema.columns) + 1)
            if ts.null_count < len(ts):
                return ts.fill_null(split.mtime_ms)
        return split.mtime_ms
