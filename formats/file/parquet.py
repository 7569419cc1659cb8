"""Parquet through ``pyarrow.parquet``.

Every logical type round-trips exactly: Arrow's schema is stored in the file, so durations
(TIME), ``decimal256`` (DECIMAL(p > 38)), nanosecond and UTC timestamps come back as written;
field metadata (the logical-type annotation of :func:`formats.file.base.annotated_arrow_schema`)
is kept too, so TIMESTAMP(3) or JSON columns are told apart from TIMESTAMP(6) or STRING.

Progress of a reader is the number of rows read; resuming skips whole row groups from the
footer and decodes only the row group the progress falls into.
"""
from __future__ import annotations

import bisect
import json
import os
import queue
import threading
from typing import BinaryIO, ClassVar, Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from pydantic import Field

from formats.base import BadRecordHandler
from formats.file.base import FileFormat, FormatReader, FormatWriter, ReadChunk, is_json_field
from formats.file.reading import concat, isolate_bad, short
from runtime.config import ConnectorConfig
from runtime.errors import BadRecordError


class ParquetConfig(ConnectorConfig):
    """Options of the ``parquet`` format."""

    summary: ClassVar[str] = "Apache Parquet through pyarrow: exact for every logical type"

    compression: Literal["none", "snappy", "gzip", "brotli", "lz4", "zstd"] = Field(
        "zstd", description="page compression codec; zstd compresses much better than "
                            "snappy at a similar speed")
    compression_level: int | None = Field(
        None, description="codec level (zstd 1-22, gzip 1-9, brotli 0-11); default: "
                          "Arrow's default for the codec")
    row_group_size: int = Field(
        64 * 1024, gt=0, description="rows per row group; rows are buffered until a row "
                                      "group is full, so small writes don't make small groups")
    dictionary_page_size: int = Field(
        1024 * 1024, gt=0, description=(
            "largest dictionary page of a column in a row group, bytes: a column whose "
            "dictionary outgrows it goes on in plain encoding.  Only columns with few distinct "
            "values in a file's first rows (at most a quarter of 8,192: a status, a country, a "
            "note from a short list) are dictionary-encoded at all; ids, texts and times go "
            "plain from the start (a dictionary built and given up on cost 1.2-2.4x the "
            "encoding time on the benchmarks' tables)"))


#: Bytes Arrow collects before it hands them to the Python file object in one ``write``.
OUTPUT_BUFFER = 1 << 20


def _spare_cores() -> int:
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    return max(0, cores - 1)


#: Writers that may encode in a thread of their own at the same time: one per core beyond
#: the first.  More would only add threads competing for the same cores (and a row group in
#: flight each: measured at parallelism 2 on 2 cores, 4% slower and 55 MB more memory).
_BACKGROUND = threading.BoundedSemaphore(_spare_cores()) if _spare_cores() else None


#: Rows of the first row group a column's distinct values are counted in, and the share of
#: them below which it is dictionary-encoded.
DICTIONARY_SAMPLE, DICTIONARY_SHARE = 8192, 0.25


def dictionary_columns(data: pa.Table) -> list[str]:
    """The columns worth a dictionary: few distinct values in a sample of ``data`` (the first
    rows of a file).  Parquet writers encode every column with a dictionary by default and
    fall back to plain pages once it is full: for a column of unique values (keys, notes,
    timestamps) that work is thrown away, and it was most of the write's CPU time (a third
    of it without).  A column chosen here still falls back once its dictionary outgrows the
    writer's page limit (later rows with more distinct values)."""
    sample = data.slice(0, DICTIONARY_SAMPLE)
    n = sample.num_rows
    out = []
    for name in sample.column_names:
        col = sample.column(name)
        t = col.type
        # nested and null columns have no hash kernel to count with; booleans need none
        if pa.types.is_nested(t) or pa.types.is_boolean(t) or pa.types.is_null(t) or not n:
            continue
        if pc.count_distinct(col).as_py() <= DICTIONARY_SHARE * n:
            out.append(name)
    return out


class ParquetFormatWriter(FormatWriter):
    """Buffers rows into row groups of ``row-group-size`` rows and writes them.

    Full row groups are encoded in the background when a core is spare: a thread encodes
    them while the caller collects the next ones (in a pipeline, the sink's own work and the
    source overlap with the encoding, which is most of the sink's time).  One batch of row
    groups at a time: handing over the next waits for the last one, so the order is kept and
    memory grows by one batch at most; the thread's error is raised there or by
    :meth:`close`.  The thread starts at the first full row group (files that never fill one
    never start it) and ends at :meth:`close`; at most one writer per spare core has one
    (:data:`_BACKGROUND`), the others encode in the caller's thread.

    Encoding runs in Arrow without the GIL, but a Python file object needs the GIL for each
    ``write``, and the encoder writes every page on its own (about a thousand writes for a
    million rows); with another thread busy in Python each of them can wait a whole GIL
    switch interval.  So the bytes go through an Arrow buffer of :data:`OUTPUT_BUFFER` bytes
    and reach ``file`` in few large writes.  :meth:`close` waits for the thread, writes the
    last rows and the footer, flushes the buffer, and leaves ``file`` open.

    Errors of ``file`` never reach Arrow (see :class:`_Output`): they are raised by the
    :meth:`write` after them or by :meth:`close`.
    """

    def __init__(self, file: BinaryIO, schema: pa.Schema, config: ParquetConfig):
        self._schema = schema
        self._group = config.row_group_size
        self._file = _Output(file)
        self._out = pa.BufferedOutputStream(pa.PythonFile(self._file, mode="w"), OUTPUT_BUFFER)
        self._config = config
        #: made for the first rows written (:meth:`_parquet`): which columns get a dictionary
        #: is decided on them
        self._writer: pq.ParquetWriter | None = None
        self._pending: list[pa.Table] = []
        self._rows = 0
        self._thread: threading.Thread | None = None  # started at the first full row group
        self._inline = False  # no core was spare: row groups are encoded by write()
        self._queue: queue.SimpleQueue[pa.Table | None] = queue.SimpleQueue()
        self._idle = threading.Event()  # the thread wrote all it was given
        self._error: BaseException | None = None

    def write(self, table: pa.Table) -> None:
        if not table.num_rows:
            return
        if table.schema.equals(self._schema):  # the same up to metadata: no cast needed
            table = pa.Table.from_arrays(table.columns, schema=self._schema)
        else:
            table = table.cast(self._schema)
        self._pending.append(table)
        self._rows += table.num_rows
        if self._rows >= self._group:
            whole = pa.concat_tables(self._pending)
            full = (self._rows // self._group) * self._group
            self._hand_over(whole.slice(0, full))
            rest = whole.slice(full)
            self._pending = [rest] if rest.num_rows else []
            self._rows = rest.num_rows

    def close(self) -> None:
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join()
            self._thread = None
            assert _BACKGROUND is not None
            _BACKGROUND.release()
        self._check()
        if self._pending:
            rest = pa.concat_tables(self._pending)
            self._parquet(rest).write_table(rest, row_group_size=self._group)
            self._pending, self._rows = [], 0
        self._parquet(self._schema.empty_table()).close()  # the footer; ``file`` stays open
        self._out.detach()  # flushes the buffer into ``file`` and leaves ``file`` open
        self._file.check()

    def _hand_over(self, table: pa.Table) -> None:
        """Give ``table`` (whole row groups) to the thread once it is done with the last (or
        encode it here when no core is spare)."""
        if self._thread is None:
            if self._inline or _BACKGROUND is None or not _BACKGROUND.acquire(blocking=False):
                self._inline = True
                self._parquet(table).write_table(table, row_group_size=self._group)
                self._check()
                return
            self._thread = threading.Thread(target=self._encode, name="parquet-encode",
                                            daemon=True)
            self._thread.start()
        else:
            self._idle.wait()
        self._check()
        self._idle.clear()
        self._queue.put(table)

    def _encode(self) -> None:
        while (table := self._queue.get()) is not None:
            try:
                if self._error is None:
                    self._parquet(table).write_table(table, row_group_size=self._group)
            except BaseException as exc:  # noqa: BLE001 - raised in the writer's thread
                self._error = exc
            finally:
                self._idle.set()

    def _parquet(self, first: pa.Table) -> pq.ParquetWriter:
        """The file's Parquet writer; made for ``first``, the first rows written (one thread
        at a time writes: the caller's, or the encoding thread while the caller waits)."""
        if self._writer is None:
            c = self._config
            self._writer = pq.ParquetWriter(
                self._out, self._schema, compression=c.compression,
                compression_level=c.compression_level,
                dictionary_pagesize_limit=c.dictionary_page_size,
                use_dictionary=dictionary_columns(first))
        return self._writer

    def _check(self) -> None:
        """Raise the error of the thread or of the file, if any."""
        if self._error is not None:
            raise self._error
        self._file.check()


class _Output:
    """The caller's file as Arrow writes to it.  An error of the file is kept, not raised into
    Arrow, and later writes are dropped: Arrow would otherwise meet it again when it destroys
    its buffer (flushing into the file from a garbage collection, at any point of any Python
    code); :meth:`check` raises it in the writer's thread."""

    __slots__ = ("_file", "error")

    def __init__(self, file: BinaryIO):
        self._file = file
        self.error: BaseException | None = None

    @property
    def closed(self) -> bool:
        return False  # Arrow asks; whether to write is decided in write()

    def write(self, data: bytes) -> int:
        if self.error is None:
            try:
                self._file.write(data)
            except BaseException as exc:  # noqa: BLE001 - kept for check()
                self.error = exc
        return len(data)

    def tell(self) -> int:
        return self._file.tell()

    def flush(self) -> None:
        if self.error is None:
            try:
                self._file.flush()
            except BaseException as exc:  # noqa: BLE001 - kept for check()
                self.error = exc

    def check(self) -> None:
        if self.error is not None:
            raise self.error


class ParquetReader(FormatReader):
    """Reads a Parquet file in batches from a row count."""

    def __init__(self, path: str, schema: pa.Schema, progress: int, batch_rows: int,
                 on_bad_record: BadRecordHandler | None):
        self.path = path
        self.schema = schema
        self.on_bad_record = on_bad_record
        self._file = pq.ParquetFile(path)
        meta = self._file.metadata
        starts = [0, *np.cumsum([meta.row_group(i).num_rows for i in range(meta.num_row_groups)])]
        group = max(0, bisect.bisect_right(starts, progress) - 1)
        names = set(self._file.schema_arrow.names)
        self._present = [f.name for f in schema if f.name in names]
        self._batches = self._file.iter_batches(
            batch_size=max(1, batch_rows), row_groups=range(group, meta.num_row_groups),
            columns=self._present)
        self._skip = progress - int(starts[group]) if group < meta.num_row_groups else 0
        self._pos = progress

    def read(self) -> ReadChunk | None:
        for raw in self._batches:
            if self._skip:
                if self._skip >= raw.num_rows:
                    self._skip -= raw.num_rows
                    continue
                raw, self._skip = raw.slice(self._skip), 0
            start = self._pos
            self._pos += raw.num_rows
            return ReadChunk(self._convert_isolating(raw, start), self._pos)
        return None

    def _convert(self, raw: pa.RecordBatch) -> pa.RecordBatch:
        cols = []
        for f in self.schema:
            if f.name not in self._present:
                cols.append(pa.nulls(raw.num_rows, f.type))
                continue
            col = raw.column(f.name)
            if is_json_field(f) and not pa.types.is_string(col.type):
                # nested Parquet values for a JSON column: their JSON text
                col = pa.array([None if v is None else json.dumps(v, default=str)
                                for v in col.to_pylist()], pa.string())
            elif not col.type.equals(f.type):
                col = col.cast(f.type)
            cols.append(col)
        return pa.RecordBatch.from_arrays(cols, schema=self.schema)

    def _convert_isolating(self, raw: pa.RecordBatch, start: int) -> pa.RecordBatch:
        def report(i: int, exc: Exception) -> None:
            err = BadRecordError(f"{self.path}: row {start + i}: {short(exc)}")
            if self.on_bad_record is None:
                raise err
            self.on_bad_record(err, raw.slice(i, 1).to_pylist()[0])

        try:
            return self._convert(raw)
        except (ValueError, pa.ArrowTypeError):
            pass  # bisect to the bad rows below
        good = isolate_bad(raw.num_rows, lambda lo, hi: self._convert(raw.slice(lo, hi - lo)),
                           report)
        return concat(good, self.schema)

    def close(self) -> None:
        self._file.close()


class ParquetFormat(FileFormat):
    """Apache Parquet (``.parquet``)."""

    name: ClassVar[str] = "parquet"
    extension: ClassVar[str] = "parquet"
    config_class: ClassVar[type[ConnectorConfig]] = ParquetConfig
    config: ParquetConfig

    def open_writer(self, file: BinaryIO, schema: pa.Schema) -> FormatWriter:
        return ParquetFormatWriter(file, schema, self.config)

    def open_reader(self, path: str, schema: pa.Schema, progress: int = 0, *,
                    batch_rows: int = 8192,
                    on_bad_record: BadRecordHandler | None = None) -> FormatReader:
        return ParquetReader(path, schema, progress, batch_rows, on_bad_record)

    def infer_schema(self, path: str) -> pa.Schema:
        """The schema stored in the file (exact, with field metadata)."""
        return pq.read_schema(path)
