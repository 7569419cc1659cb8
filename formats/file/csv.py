"""CSV (RFC 4180): Arrow's CSV writer and reader, with the value encodings of
:mod:`formats.codec.text` for what CSV has no text form of (TIME, bytes, arrays, ISO-8601
timestamps).

Nulls are empty unquoted fields; strings are always quoted by the writer, so ``""`` (an empty
string) and null stay apart.  Quoted values may contain newlines: the reader cuts blocks only
at newlines outside quotes (quote parity, which holds for RFC 4180 doubled-quote escaping).

What reading back loses: with declared columns (an annotated schema), only the whitespace of
JSON values.  With an inferred schema, types are what the text looks like: decimals come
back as DOUBLE or BIGINT, bytes and TIME as STRING, timestamps as TIMESTAMP(0) or (9).
Without a header, columns are matched by position.
"""
from __future__ import annotations

import csv as pycsv
import io
from typing import BinaryIO, ClassVar

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pcsv
from pydantic import Field

from formats.base import BadRecordHandler
from formats.codec.text import decode_text, text
from formats.file.base import FileFormat, FormatReader, FormatWriter
from formats.file.reading import MAX_RECORD, TextFileReader
from runtime.config import ConnectorConfig
from runtime.errors import BadRecordError, ConfigError

_INFER_BYTES = 1 << 20


class CsvConfig(ConnectorConfig):
    """Options of the ``csv`` format."""

    summary: ClassVar[str] = "CSV (RFC 4180) through Arrow's CSV reader and writer"

    delimiter: str = Field(",", min_length=1, max_length=1,
                           description="the character between fields")
    header: bool = Field(True, description="the first line holds the column names (written "
                                           "by the writer, expected by the reader)")
    quote_char: str = Field('"', max_length=1,
                            description='the character quoting fields; "" turns quoting off '
                                        '(reading only: the writer always quotes with \'"\')')


def _native(t: pa.DataType) -> bool:
    """Types Arrow's CSV reader and writer handle in our encodings."""
    return bool(pa.types.is_boolean(t) or pa.types.is_integer(t) or pa.types.is_floating(t)
                or pa.types.is_decimal128(t) or pa.types.is_string(t) or pa.types.is_date32(t)
                or pa.types.is_large_string(t))


def _parse_type(t: pa.DataType) -> pa.DataType:
    # naive timestamps parse natively from ISO-8601; the rest goes through textcodec.
    # Decimals too: Arrow's CSV decimal conversion checks no precision after scaling
    # ("12345678901.5" came out as 12345678901.50 in a DECIMAL(12,2)) and wraps a value round
    # at 128 bits (see formats.codec.text.parse_decimal), where decode_text is exact
    if pa.types.is_decimal(t):
        return pa.string()
    return t if _native(t) or pa.types.is_timestamp(t) and not t.tz else pa.string()


def _decode(col: pa.Array, field: pa.Field) -> pa.Array:
    """A column read as text to ``field``'s type; ValueError naming the column otherwise."""
    try:
        try:
            return decode_text(col, field.type)
        except ValueError:
            if not pa.types.is_decimal(field.type):
                raise
        # Arrow's CSV numbers allow spaces and tabs around them: so do we (trimmed only
        # here: one kernel less for the usual column)
        return decode_text(pc.utf8_trim(col, " \t"), field.type)
    except (ValueError, pa.ArrowTypeError) as exc:
        raise ValueError(f"column {field.name!r}: {exc}") from None


class CsvWriter(FormatWriter):
    """Writes rows as CSV lines (header first when configured)."""

    def __init__(self, file: BinaryIO, schema: pa.Schema, config: CsvConfig):
        if config.quote_char != '"':
            raise ConfigError("the csv writer quotes with '\"' only",
                              key="format-options.quote-char")
        self._convert = [not _native(f.type) for f in schema]
        self._schema = pa.schema([pa.field(f.name, pa.string()) if conv else f.remove_metadata()
                                  for f, conv in zip(schema, self._convert)])
        opts = pcsv.WriteOptions(include_header=config.header, delimiter=config.delimiter,
                                 quoting_style="needed")
        self._writer = pcsv.CSVWriter(file, self._schema, write_options=opts)

    def write(self, table: pa.Table) -> None:
        cols = [text(c.combine_chunks()) if conv else c
                for c, conv in zip(table.columns, self._convert)]
        self._writer.write_table(pa.Table.from_arrays(cols, schema=self._schema))

    def close(self) -> None:
        self._writer.close()  # does not close the file object


class CsvReader(TextFileReader):
    """Reads CSV in blocks with Arrow's CSV reader; columns matched by header name (missing
    ones null), or by position without a header."""

    def __init__(self, path: str, schema: pa.Schema, progress: int, batch_rows: int,
                 on_bad_record: BadRecordHandler | None, config: CsvConfig):
        super().__init__(path, schema, progress, batch_rows, on_bad_record)
        self._quote = config.quote_char.encode() or None
        names = [f.name for f in schema]
        if config.header:
            names, header_end = self._read_header(config)
            self._pos = max(self._pos, header_end)
        self._parse_options = pcsv.ParseOptions(
            delimiter=config.delimiter, quote_char=config.quote_char or False,
            newlines_in_values=self._quote is not None,
            # one column: an empty line is a null value, not a blank line to skip
            ignore_empty_lines=len(names) > 1)
        self._read_options = pcsv.ReadOptions(column_names=names, use_threads=False)
        self._convert_options = pcsv.ConvertOptions(
            column_types={f.name: _parse_type(f.type) for f in schema},
            include_columns=[f.name for f in schema], include_missing_columns=True,
            null_values=[""], strings_can_be_null=True, quoted_strings_can_be_null=False)

    def _read_header(self, config: CsvConfig) -> tuple[list[str], int]:
        with open(self.path, "rb") as f:
            data = f.read(MAX_RECORD)
        end = self._first_record_end(data)
        line = data[:end].decode("utf-8-sig")
        if not line.strip():
            return [f.name for f in self.schema], end
        quoting = pycsv.QUOTE_MINIMAL if self._quote else pycsv.QUOTE_NONE
        names = next(pycsv.reader(io.StringIO(line), delimiter=config.delimiter,
                                  quotechar=config.quote_char or None, quoting=quoting))
        return names, end

    def _first_record_end(self, data: bytes) -> int:
        end = data.find(b"\n")
        while self._quote and end >= 0 and data.count(self._quote, 0, end) % 2:
            end = data.find(b"\n", end + 1)
        return len(data) if end < 0 else end + 1

    def cut(self, data: bytes, limit: int) -> int:
        end = data.rfind(b"\n", 0, limit)
        while self._quote and end >= 0 and data.count(self._quote, 0, end) % 2:
            end = data.rfind(b"\n", 0, end)
        return end + 1

    def record_ends(self, data: bytes) -> np.ndarray:
        arr = np.frombuffer(data, np.uint8)
        nl = np.flatnonzero(arr == 10)
        if self._quote:
            quotes = np.cumsum(arr == self._quote[0])
            nl = nl[quotes[nl] % 2 == 0]
        return self._with_tail(nl + 1, len(data))

    def parse(self, data: pa.Buffer) -> pa.RecordBatch:
        table = pcsv.read_csv(pa.BufferReader(data), read_options=self._read_options,
                              parse_options=self._parse_options,
                              convert_options=self._convert_options)
        cols = [c.combine_chunks() for c in table.columns]
        cols = [c if c.type == f.type else _decode(c, f) for c, f in zip(cols, self.schema)]
        return pa.RecordBatch.from_arrays(cols, schema=self.schema)


class CsvFormat(FileFormat):
    """CSV (``.csv``).  See the module docstring for encodings and what is lossy."""

    name: ClassVar[str] = "csv"
    extension: ClassVar[str] = "csv"
    config_class: ClassVar[type[ConnectorConfig]] = CsvConfig
    config: CsvConfig

    @property
    def named_columns(self) -> bool:
        return self.config.header

    def open_writer(self, file: BinaryIO, schema: pa.Schema) -> FormatWriter:
        return CsvWriter(file, schema, self.config)

    def open_reader(self, path: str, schema: pa.Schema, progress: int = 0, *,
                    batch_rows: int = 8192,
                    on_bad_record: BadRecordHandler | None = None) -> FormatReader:
        return CsvReader(path, schema, progress, batch_rows, on_bad_record, self.config)

    def infer_schema(self, path: str) -> pa.Schema:
        """Names from the header (``f0``, ``f1``... without one), types Arrow infers from the
        first MiB of records (empty schema for an empty file)."""
        cfg = self.config
        with open(path, "rb") as f:
            data = f.read(_INFER_BYTES)
        if len(data) == _INFER_BYTES:
            quote = cfg.quote_char.encode()
            end = data.rfind(b"\n")
            while quote and end >= 0 and data.count(quote, 0, end) % 2:
                end = data.rfind(b"\n", 0, end)
            data = data[:end + 1] or data
        if not data.strip():
            return pa.schema([])
        try:
            table = pcsv.read_csv(
                pa.BufferReader(data),
                read_options=pcsv.ReadOptions(autogenerate_column_names=not cfg.header,
                                              use_threads=False),
                parse_options=pcsv.ParseOptions(delimiter=cfg.delimiter,
                                                 quote_char=cfg.quote_char or False,
                                                 newlines_in_values=bool(cfg.quote_char)),
                convert_options=pcsv.ConvertOptions(null_values=[""], strings_can_be_null=True,
                                                    quoted_strings_can_be_null=False))
        except (pa.ArrowInvalid, ValueError) as exc:
            raise BadRecordError(f"{path}: can't infer CSV columns: {exc}") from None
        return table.schema
