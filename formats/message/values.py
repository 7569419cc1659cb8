"""Column-wise conversions shared by the JSON message formats.

Decoding: values of one column across many decoded messages (Python values from
``json.loads``) become one Arrow array of the column's logical type with
:func:`formats.codec.text.from_json_values`, once per column and batch (not per value).
Encoding: a batch's columns become JSON texts with :func:`formats.codec.text.json_text` and are
joined into one JSON object per row with Arrow kernels.
"""
from __future__ import annotations

import json
from collections.abc import Callable, Collection, Sequence
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from formats.codec.text import (from_json_values, json_string_literal, json_text,
                               text, timestamp_text)
from runtime.batch import ChangeBatch
from runtime.schema import Column, SchemaChange, TableSchema
from runtime.types import DataType, T, to_arrow


def infer_type(value: Any) -> DataType:
    """The logical type a JSON value suggests (for formats without declared types)."""
    if isinstance(value, bool):
        return T("BOOLEAN")
    if isinstance(value, int):
        return T("BIGINT")
    if isinstance(value, float):
        return T("DOUBLE")
    if isinstance(value, (dict, list)):
        return T("JSON")
    return T("STRING")


def column_array(vals: list[Any], dtype: DataType) -> pa.Array:
    """JSON-decoded values of one column as an Arrow array of ``dtype``.  Raises ValueError
    (naming the value) when one does not convert."""
    target = to_arrow(dtype)
    if dtype.kind == "JSON":
        vals = [v if v is None or isinstance(v, str) else
                json.dumps(v, separators=(",", ":"), ensure_ascii=False) for v in vals]
        return pa.array(vals, target)
    # DECIMAL: JSON numbers are taken too, exactly (from_json_values)
    if dtype.is_string:
        vals = [v if v is None or isinstance(v, str) else
                json.dumps(v, ensure_ascii=False) if isinstance(v, (dict, list)) else str(v)
                for v in vals]
    elif (dtype.is_integer or dtype.kind in ("BOOLEAN", "FLOAT", "DOUBLE")) and any(
            isinstance(v, str) for v in vals):
        # producers that write every value as a string (Canal)
        vals = [v if v is None or isinstance(v, str) else json.dumps(v) for v in vals]
        try:
            return pa.array(vals, pa.string()).cast(target)
        except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
            raise ValueError(f"a value is not a {dtype}: {exc}") from None
    try:
        return from_json_values(vals, target)
    except (pa.ArrowInvalid, pa.ArrowTypeError, ValueError) as exc:
        raise ValueError(f"a value is not a {dtype}: {exc}") from None


def rows_to_arrow(schema: TableSchema, rows: Sequence[dict[str, Any] | None]) -> pa.RecordBatch:
    """Dicts (column name -> JSON value; ``None`` = an all-null row) as a record batch."""
    arrays = []
    for c in schema.columns:
        vals = [None if r is None else r.get(c.name) for r in rows]
        try:
            arrays.append(column_array(vals, c.type))
        except ValueError as exc:
            raise ValueError(f"column {c.name!r}: {exc}") from None
    return pa.RecordBatch.from_arrays(arrays, schema=schema.arrow_schema)


def infer_schema(table: str, rows: Sequence[dict[str, Any]], primary_key: Sequence[str] = ()
                 ) -> TableSchema:
    """Columns in first-seen order, typed by their first non-null value."""
    types: dict[str, DataType | None] = {}
    for r in rows:
        for k, v in r.items():
            if types.get(k) is None:
                types[k] = None if v is None else infer_type(v)
    cols = tuple(Column(k, t or T("STRING"), k not in primary_key) for k, t in types.items())
    pk = tuple(k for k in primary_key if k in types)
    return TableSchema(table, cols, pk)


def schema_changes(old: TableSchema | None, new: TableSchema, ts_ms: int,
                   position: Any = None) -> list[SchemaChange]:
    """The schema changes that turn ``old`` into ``new`` (empty when equal or ``old`` is
    None): added, dropped and retyped columns."""
    if old is None or old == new:
        return []
    out = []
    old_cols = {c.name: c for c in old.columns}
    new_names = set(new.names)
    for c in old.columns:
        if c.name not in new_names:
            out.append(SchemaChange("drop_column", new.table, new, {"column": c.name}, ts_ms,
                                    position))
    for c in new.columns:
        prev = old_cols.get(c.name)
        if prev is None:
            out.append(SchemaChange("add_column", new.table, new, {"column": c.name}, ts_ms,
                                    position))
        elif prev.type != c.type:
            out.append(SchemaChange("alter_column_type", new.table, new,
                                    {"column": c.name, "old_type": str(prev.type),
                                     "new_type": str(c.type)}, ts_ms, position))
    if not out:  # only the key, nullability or column order changed
        out.append(SchemaChange("create_table", new.table, new, {"replaces": True}, ts_ms,
                                position))
    return out


# -- encoding ---------------------------------------------------------------------------------
def object_texts(rb: pa.RecordBatch, schema: TableSchema, json_as_string: bool = False,
                 extra: Sequence[tuple[str, pa.Array | str]] = (),
                 raw: Collection[str] = ()) -> pa.Array:
    """One JSON object text per row of ``rb`` (keys in schema order, then the ``extra``
    fields: name and JSON texts, or one JSON text for every row).  ``json_as_string``: JSON
    columns as JSON string literals (Debezium's io.debezium.data.Json) instead of embedded
    documents.  ``raw``: columns whose strings are JSON texts to embed as they are, whatever
    ``json_as_string`` says (Connect structs the caller wrote).

    One Arrow join for the whole batch.  The quotes of string-like values without nulls go
    into the separators (``","name":"``) instead of a join of their own, and constant fields
    into the separators too."""
    n = rb.num_rows
    args: list[Any] = []
    lead = "{"  # what goes before the next field
    for c, col in zip(schema.columns, rb.columns):
        name = json.dumps(c.name, ensure_ascii=False)
        if c.name in raw:
            text, quoted = col.fill_null("null"), False
        elif c.type.kind == "JSON":
            col = pc.if_else(pc.equal(col, ""), pa.scalar(None, col.type), col)
            text = (json_string_literal(col).fill_null("null") if json_as_string
                    else json_text(col, raw_json=True))
            quoted = False
        else:
            text, quoted = _value_text(col)
        if quoted:
            args += [lead + name + ':"', text]
            lead = '",'
        else:
            args += [lead + name + ":", text]
            lead = ","
    for name, text in extra:
        if isinstance(text, str):
            lead += json.dumps(name) + ":" + text + ","
        else:
            args += [lead + json.dumps(name) + ":", text]
            lead = ","
    closing = (lead[:-1] if lead.endswith(",") else lead) + "}"
    if not args:
        return pa.array([closing] * n, pa.string())
    return pc.binary_join_element_wise(*args, closing, "")


def _value_text(col: pa.Array) -> tuple[pa.Array, bool]:
    """JSON text of a column's values: ``(text, False)``, or ``(content, True)`` when every
    value is a JSON string whose content is ``content`` (no nulls, nothing to escape): the
    caller puts the quotes into its separators."""
    if isinstance(col, pa.ChunkedArray):
        col = col.combine_chunks()
    t = col.type
    if pa.types.is_string(t):
        if len(col) and not _needs_escape(col):
            if not col.null_count:
                return col, True
            return pc.binary_join_element_wise('"', col, '"', "").fill_null("null"), False
    elif not col.null_count and len(col):
        if pa.types.is_decimal(t) or pa.types.is_date(t):
            return col.cast(pa.string()), True
        if pa.types.is_timestamp(t):
            return _timestamp_text(col), True
        if pa.types.is_duration(t) or pa.types.is_binary(t):
            return text(col), True
    return json_text(col), False


def _needs_escape(arr: pa.Array) -> bool:
    """True when a string of ``arr`` (``pa.string()``) has a character JSON escapes: one
    vectorised pass over the bytes (UTF-8 continuation bytes are all >= 0x80)."""
    data = arr.buffers()[2]
    if data is None:
        return False
    off = np.frombuffer(arr.buffers()[1], np.int32, len(arr) + 1, arr.offset * 4)
    b = np.frombuffer(data, np.uint8)[off[0]:off[-1]]
    return bool(b.size) and bool(b.min() < 0x20 or (b == 0x22).any() or (b == 0x5C).any())


def _timestamp_text(arr: pa.Array) -> pa.Array:
    """:func:`formats.codec.text.timestamp_text` of a timestamp array without nulls; when
    every text has the same width (four-digit years), the ``T`` is set in a copy of the
    bytes instead of a search-and-replace kernel."""
    t = arr.type
    unit = t.unit if t.unit in ("us", "ns") else "us"
    s = arr.cast(pa.timestamp(unit, "UTC" if t.tz else None)).cast(pa.string())
    n = len(s)
    off = np.frombuffer(s.buffers()[1], np.int32, n + 1, s.offset * 4)
    width = int(off[1] - off[0])
    if width > 10 and int(off[-1] - off[0]) == n * width and (np.diff(off) == width).all():
        data = np.frombuffer(s.buffers()[2], np.uint8)[off[0]:off[-1]].reshape(n, width)
        if (data[:, 10] == 0x20).all():
            data = data.copy()
            data[:, 10] = 0x54  # "T"
            return pa.Array.from_buffers(pa.string(), n, [
                None, pa.py_buffer(np.arange(0, n * width + 1, width, dtype=np.int32)),
                pa.py_buffer(data)])
    return timestamp_text(arr)


def before_texts(batch: ChangeBatch, json_as_string: bool = False,
                 encode: Callable[[pa.RecordBatch, TableSchema], pa.Array] | None = None
                 ) -> pa.Array:
    """JSON object texts of the before images of updates (``null`` where there is none);
    ``encode(record_batch, schema)`` makes the texts when a format encodes values its own
    way (default: :func:`object_texts`)."""
    n = len(batch)
    if batch.before is None or all(b is None for b in batch.before):
        return pa.array(["null"] * n, pa.string())
    width = len(batch.schema.columns)
    rows = [b if b is not None else (None,) * width for b in batch.before]
    rb = ChangeBatch(batch.schema, batch.ops, rows=rows).arrow()
    mask = pa.array([b is not None for b in batch.before])
    texts = (encode(rb, batch.schema) if encode is not None
             else object_texts(rb, batch.schema, json_as_string))
    return pc.if_else(mask, texts, pa.scalar("null"))


def split_utf8(arr: pa.Array) -> list[bytes | None]:
    """Each string of ``arr`` as its own ``bytes`` (None for a null); zero-copy cast to
    binary, then one C loop."""
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    return arr.cast(pa.binary()).to_pylist()


def ops_of(ops: str) -> pa.Array:
    return pa.array(np.frombuffer(ops.encode("ascii"), dtype="S1")).cast(pa.string())
