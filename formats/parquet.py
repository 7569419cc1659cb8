"""Parquet through ``pyarrow.parquet``.

Every logical type round-trips exactly: Arrow's schema is stored in the file, so durations
(TIME), ``decimal256`` (DECIMAL(p > 38)), nanosecond and UTC timestamps come back as written;
field metadata (the logical-type annotation of :func:`formats.base.annotated_arrow_schema`)
is kept too, so TIMESTAMP(3) or JSON columns are told apart from TIMESTAMP(6) or STRING.

Progress of a reader is the number of rows read; resuming skips whole row groups from the
footer and decodes only the row group the progress falls into.
"""
from __future__ import annotations

import bisect
import json
from typing import BinaryIO, ClassVar, Literal

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from pydantic import Field

from formats.base import (BadRecordHandler, FileFormat, FormatReader, FormatWriter, ReadChunk,
                          is_json_field)
from formats.reading import concat, isolate_bad, short
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


class ParquetFormatWriter(FormatWriter):
    """Buffers rows into row groups of ``row-group-size`` rows and writes them."""

    def __init__(self, file: BinaryIO, schema: pa.Schema, config: ParquetConfig):
        self._schema = schema
        self._group = config.row_group_size
        self._writer = pq.ParquetWriter(file, schema, compression=config.compression,
                                        compression_level=config.compression_level)
        self._pending: list[pa.Table] = []
        self._rows = 0

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
            self._writer.write_table(whole.slice(0, full), row_group_size=self._group)
            rest = whole.slice(full)
            self._pending = [rest] if rest.num_rows else []
            self._rows = rest.num_rows

    def close(self) -> None:
        if self._pending:
            self._writer.write_table(pa.concat_tables(self._pending), row_group_size=self._group)
            self._pending, self._rows = [], 0
        self._writer.close()  # writes the footer; a file object passed in stays open


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
