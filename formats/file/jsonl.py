"""JSON lines: one JSON object per line, keys in schema order, nulls written as ``null``.

Value encodings are those of :mod:`formats.codec.text` (decimals as exact strings, ISO-8601
timestamps with microseconds, base64 bytes, JSON columns embedded).  Reading, a DECIMAL column
also takes JSON numbers (other producers write decimals so), exactly: a value that does not
fit its column is a bad record, never rounded.  Writing is vectorised:
each column becomes an Arrow array of JSON texts, the lines are joined with Arrow kernels and
the resulting buffer is written as it is (no Python object per row).

What reading back loses: with declared columns (an annotated schema) nothing but NaN and
infinities (written as null) and the whitespace inside JSON values.  With an inferred schema,
types are what the values look like: decimals and dates come back as STRING or TIMESTAMP,
bytes as their base64 STRING, TIME as STRING, TIMESTAMP_LTZ as STRING.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, BinaryIO, ClassVar

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pj

from formats.base import BadRecordHandler
from formats.codec.text import (JsonNumber, decode_text, from_json_values, json_text,
                                string_field_met)
from formats.file.base import (LOGICAL_TYPE_KEY, FileFormat, FormatReader, FormatWriter,
                               is_json_field)
from formats.file.reading import TextFileReader
from runtime.config import ConnectorConfig

_INFER_BYTES = 1 << 20


class JsonlConfig(ConnectorConfig):
    """JSON lines has no options: its encodings are fixed (see :mod:`formats.codec.text`)."""

    summary: ClassVar[str] = "JSON lines: one object per line, exact decimals, ISO-8601 times"


class JsonlWriter(FormatWriter):
    """Writes each row as one JSON object on its own line."""

    _CHUNK_ROWS = 65536  # keeps the joined text of a chunk well under Arrow's 2 GiB

    def __init__(self, file: BinaryIO, schema: pa.Schema):
        self._file = file
        self._schema = schema
        names = [json.dumps(f.name, ensure_ascii=False) for f in schema]
        # literal pieces between the values: '{"a":', ',"b":', ..., '}\n'
        self._pieces = ["{" + names[0] + ":"] + ["," + n + ":" for n in names[1:]] if names else []
        self._raw = [is_json_field(f) for f in schema]

    def write(self, table: pa.Table) -> None:
        if not self._pieces:
            self._file.write(b"{}\n" * table.num_rows)
            return
        for batch in table.to_batches(max_chunksize=self._CHUNK_ROWS):
            if batch.num_rows:
                self._file.write(self._lines(batch))

    def _lines(self, batch: pa.RecordBatch) -> memoryview:
        args: list[Any] = []
        for piece, col, raw in zip(self._pieces, batch.columns, self._raw):
            if raw:  # an empty string is no JSON document: write null rather than a broken line
                col = pc.if_else(pc.equal(col, ""), pa.scalar(None, col.type), col)
                # a line break in valid JSON is whitespace between tokens (inside a string it
                # would be escaped): a space keeps the document and the one-line-per-row rule
                col = pc.replace_substring_regex(col, "[\r\n]", " ")
            args += [piece, json_text(col, raw_json=raw)]
        lines = pc.binary_join_element_wise(*args, "}\n", "")
        offsets = np.frombuffer(lines.buffers()[1], np.int32, len(lines) + 1, lines.offset * 4)
        return memoryview(lines.buffers()[2])[offsets[0]:offsets[-1]]

    def close(self) -> None:
        self._file.flush()


def _native(t: pa.DataType) -> bool:
    """Types Arrow's JSON reader converts to directly.  Not decimals: its decimal conversion
    checks no precision after scaling ("12345678901.5" came out as 12345678901.50 in a
    DECIMAL(12,2)) and wraps a value round at 128 bits (see
    :func:`formats.codec.text.parse_decimal`): they are read as strings and decoded exactly."""
    if pa.types.is_list(t):
        return _native(t.value_type)
    return bool(pa.types.is_boolean(t) or pa.types.is_integer(t) or pa.types.is_floating(t)
                or pa.types.is_string(t) or pa.types.is_timestamp(t)
                or pa.types.is_large_string(t))


def _has_decimal(t: pa.DataType) -> bool:
    return bool(pa.types.is_decimal(t) or pa.types.is_list(t) and _has_decimal(t.value_type))


@dataclass(frozen=True)
class _Plan:
    """Which columns Arrow's JSON reader parses (``options``) and which come from
    ``json.loads`` of each line (``python``)."""

    options: pj.ParseOptions
    python: frozenset[str]
    arrow_needed: bool


class JsonlReader(TextFileReader):
    """Reads JSON lines in blocks with Arrow's JSON reader.  Fields Arrow can't read directly
    (JSON documents, arrays of dates or bytes) are taken from ``json.loads`` of the lines.

    DECIMAL columns are read as JSON strings (what the writer writes) and decoded exactly.  A
    decimal written as a JSON number can't come out of Arrow's reader with its digits (it
    refuses a number in a string field): from the first block with one, the file's DECIMAL
    columns are taken from ``json.loads`` too, which keeps the number's text."""

    def __init__(self, path: str, schema: pa.Schema, progress: int, batch_rows: int,
                 on_bad_record: BadRecordHandler | None):
        super().__init__(path, schema, progress, batch_rows, on_bad_record)
        python = {f.name for f in schema
                  if is_json_field(f) or (pa.types.is_list(f.type) and not _native(f.type))}
        self._decimals = {f.name for f in schema if _has_decimal(f.type)}
        self._plan = self._planned(python)
        self._numbers = self._planned(python | self._decimals)  # decimals as JSON numbers

    def _planned(self, python: set[str]) -> _Plan:
        parse_fields = [f if _native(f.type) else pa.field(f.name, pa.string())
                        for f in self.schema if f.name not in python]
        return _Plan(pj.ParseOptions(explicit_schema=pa.schema(parse_fields),
                                     unexpected_field_behavior="ignore"),
                     frozenset(python), bool(parse_fields) or not python)

    def parse(self, data: pa.Buffer) -> pa.RecordBatch:
        try:
            return self._parse(data, self._plan)
        except pa.ArrowInvalid as exc:
            # pyarrow.json met a JSON number where it reads a string: in a DECIMAL column
            met = string_field_met(str(exc))
            if self._plan is self._numbers or met is None or met[1] != "number" \
                    or met[0] not in self._decimals:
                raise
        self._plan = self._numbers  # the rest of the file: one producer writes it alike
        return self._parse(data, self._plan)

    def _parse(self, data: pa.Buffer, plan: _Plan) -> pa.RecordBatch:
        table = None
        if plan.arrow_needed:
            # one Arrow block for the whole buffer: no straddling, no thread hand-off
            opts = pj.ReadOptions(use_threads=False, block_size=max(1 << 16, data.size + 1))
            table = pj.read_json(pa.BufferReader(data), read_options=opts,
                                 parse_options=plan.options)
        objs: list[Any] | None = None
        if plan.python:
            # numbers with a fraction or an exponent keep their text (for DECIMAL columns)
            objs = [json.loads(line, parse_float=JsonNumber)
                    for line in data.to_pybytes().splitlines() if line.strip()]
            if any(not isinstance(o, dict) for o in objs):
                raise ValueError("a line is not a JSON object")
            if table is not None and len(objs) != table.num_rows:
                raise ValueError("JSON lines and parsed rows disagree")
        cols = []
        for f in self.schema:
            try:
                if f.name in plan.python:
                    assert objs is not None
                    col = _from_python([o.get(f.name) for o in objs], f)
                else:
                    assert table is not None
                    col = table.column(f.name).combine_chunks()
                    if col.type != f.type:
                        col = decode_text(col, f.type)
            except (ValueError, pa.ArrowTypeError) as exc:
                raise ValueError(f"column {f.name!r}: {exc}") from None
            cols.append(col)
        return pa.RecordBatch.from_arrays(cols, schema=self.schema)


def _from_python(vals: list[Any], f: pa.Field) -> pa.Array:
    """Values of one column from ``json.loads`` as an array of ``f``'s type."""
    if is_json_field(f):
        return pa.array([None if v is None else json.dumps(
            v, separators=(",", ":"), ensure_ascii=False) for v in vals], f.type)
    return from_json_values(vals, f.type)


class JsonlFormat(FileFormat):
    """JSON lines (``.jsonl``).  See the module docstring for encodings and what is lossy."""

    name: ClassVar[str] = "jsonl"
    extension: ClassVar[str] = "jsonl"
    config_class: ClassVar[type[ConnectorConfig]] = JsonlConfig

    def open_writer(self, file: BinaryIO, schema: pa.Schema) -> FormatWriter:
        return JsonlWriter(file, schema)

    def open_reader(self, path: str, schema: pa.Schema, progress: int = 0, *,
                    batch_rows: int = 8192,
                    on_bad_record: BadRecordHandler | None = None) -> FormatReader:
        return JsonlReader(path, schema, progress, batch_rows, on_bad_record)

    def infer_schema(self, path: str) -> pa.Schema:
        """Types Arrow infers from the first MiB of lines (empty schema for an empty file)."""
        with open(path, "rb") as f:
            data = f.read(_INFER_BYTES)
            if len(data) == _INFER_BYTES:
                data = data[:data.rfind(b"\n") + 1] or data
        if not data.strip():
            return pa.schema([])
        try:
            return pj.read_json(pa.BufferReader(data),
                                read_options=pj.ReadOptions(use_threads=False)).schema
        except pa.ArrowInvalid:
            return _infer_per_key(data)


def _infer_per_key(data: bytes) -> pa.Schema:
    """Inference where Arrow's fails (values of a key that change shape between lines): each
    key on its own; keys whose values can't share one Arrow type are JSON columns."""
    objs = []
    for line in data.splitlines():
        if line.strip():
            obj = json.loads(line)
            if isinstance(obj, dict):
                objs.append(obj)
    keys = list(dict.fromkeys(k for o in objs for k in o))
    fields = []
    for k in keys:
        try:
            t = pa.array([o.get(k) for o in objs]).type
            if pa.types.is_struct(t):
                raise pa.ArrowInvalid("nested")
            fields.append(pa.field(k, t))
        except (pa.ArrowInvalid, pa.ArrowTypeError):
            fields.append(pa.field(k, pa.string(), metadata={LOGICAL_TYPE_KEY: b"JSON"}))
    return pa.schema(fields)
