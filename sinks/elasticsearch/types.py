"""From logical types to Elasticsearch mappings and bulk request lines, column at a time.

Bulk bodies are built with Arrow compute functions over whole columns (JSON text of each value,
then one string join per row), never one Python dict per row.  Value encoding:

===========================  =================================  ==============================
logical type                 mapping                            JSON value
===========================  =================================  ==============================
BOOLEAN, TINYINT..BIGINT     boolean, byte, short, integer,     number / true / false
                             long
FLOAT, DOUBLE                float, double                      number (NaN, infinity: null)
DECIMAL(p,s)                 scaled_float (factor 10^s; double  exact decimal text, e.g.
                             when p > 18), keyword or double    ``"12.30"``
                             (``decimal-mapping``)
CHAR, VARCHAR, STRING        text with a ``keyword`` subfield   string
BINARY, VARBINARY, BYTES     binary                             base64 string
DATE                         date (strict_date)                 ``"2024-05-01"``
TIME(p)                      long                               microseconds (signed)
TIMESTAMP(p)                 date_nanos or date                 ``"2024-05-01T12:30:00.123456"``
TIMESTAMP_LTZ(p)             date_nanos or date                 the same with ``Z`` (UTC)
JSON                         object, flattened or keyword       the JSON itself (keyword: text)
ARRAY<T>                     the mapping of T                   JSON array
===========================  =================================  ==============================

Document ``_id``: the primary-key values as text (integers in decimal, DECIMAL as exact text,
dates and timestamps as above, bytes as base64), joined with ``key-delimiter`` for composite
keys; a NULL key part is ``null``.
"""
from __future__ import annotations

import base64
import json
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from runtime.schema import TableSchema
from runtime.types import DataType

_INT_MAPPING = {"TINYINT": "byte", "SMALLINT": "short", "INT": "integer", "BIGINT": "long"}
_CONTROL = "[\\x00-\\x08\\x0b\\x0c\\x0e-\\x1f]"
_NULL = pa.scalar("null")


def field_mapping(t: DataType, decimal: str = "scaled_float", timestamp: str = "date_nanos",
                  json_mapping: str = "object") -> dict[str, Any]:
    """The mapping of one column of type ``t``."""
    k = t.kind
    if k == "BOOLEAN":
        return {"type": "boolean"}
    if k in _INT_MAPPING:
        return {"type": _INT_MAPPING[k]}
    if k == "FLOAT":
        return {"type": "float"}
    if k == "DOUBLE":
        return {"type": "double"}
    if k == "DECIMAL":
        if decimal == "keyword":
            return {"type": "keyword"}
        if decimal == "double" or (t.precision or 0) > 18:
            # a scaled long would overflow: 10^p no longer fits in 63 bits
            return {"type": "double"}
        return {"type": "scaled_float", "scaling_factor": 10 ** (t.scale or 0)}
    if t.is_string:
        return {"type": "text", "fields": {"keyword": {"type": "keyword", "ignore_above": 256}}}
    if t.is_binary:
        return {"type": "binary"}
    if k == "DATE":
        return {"type": "date", "format": "strict_date"}
    if k == "TIME":
        return {"type": "long"}
    if k in ("TIMESTAMP", "TIMESTAMP_LTZ"):
        return {"type": timestamp}
    if k == "JSON":
        return {"type": json_mapping} if json_mapping != "object" else {"type": "object"}
    if k == "ARRAY":
        assert t.element is not None
        return field_mapping(t.element, decimal, timestamp, json_mapping)
    raise ValueError(f"no Elasticsearch mapping for {t}")


def index_mapping(schema: TableSchema, decimal: str = "scaled_float",
                  timestamp: str = "date_nanos", json_mapping: str = "object") -> dict[str, Any]:
    """``{"properties": ...}`` for every column of ``schema``."""
    return {"properties": {c.name: field_mapping(c.type, decimal, timestamp, json_mapping)
                           for c in schema.columns}}


# -- values as JSON text ----------------------------------------------------------------------
def _quote(text: pa.Array) -> pa.Array:
    """``"..."`` around text that needs no escaping (digits, dates, base64)."""
    return pc.binary_join_element_wise('"', text, '"', "")


def json_strings(values: pa.Array) -> pa.Array:
    """Strings as JSON string literals (null stays null)."""
    s = values.cast(pa.string())
    for raw, escaped in (("\\", "\\\\"), ('"', '\\"'), ("\n", "\\n"), ("\r", "\\r"),
                         ("\t", "\\t")):
        s = pc.replace_substring(s, raw, escaped)
    rare = pc.match_substring_regex(s, _CONTROL)
    if pc.any(rare).as_py():
        # other control characters: rare enough for the json module, row by row
        return pa.array([None if v is None else json.dumps(v) for v in values.to_pylist()],
                        type=pa.string())
    return _quote(s)


def _text(values: pa.Array, t: DataType) -> pa.Array:
    """Plain text of values (the ``_id`` form and the inside of quoted JSON values)."""
    k = t.kind
    if t.is_binary:
        return pa.array([None if v is None else base64.b64encode(v).decode("ascii")
                         for v in values.to_pylist()], type=pa.string())
    if k in ("TIMESTAMP", "TIMESTAMP_LTZ"):
        text = pc.strftime(values, format="%Y-%m-%dT%H:%M:%S")
        return pc.binary_join_element_wise(text, "Z", "") if k == "TIMESTAMP_LTZ" else text
    if k == "TIME":
        return _micros(values).cast(pa.string())
    return values.cast(pa.string())


def _micros(values: pa.Array) -> pa.Array:
    ints = values.cast(pa.int64())
    return pc.divide(ints, 1000) if values.type.unit == "ns" else ints


def json_values(values: pa.Array, t: DataType, json_mapping: str = "object") -> pa.Array:
    """Every value of one column as JSON text; nulls as ``null``."""
    k = t.kind
    if k == "BOOLEAN" or t.is_integer:
        out = values.cast(pa.string())
    elif k in ("FLOAT", "DOUBLE"):
        finite = pc.is_finite(values)
        out = pc.if_else(finite, values.cast(pa.string()), pa.scalar(None, pa.string()))
    elif k == "TIME":
        out = _micros(values).cast(pa.string())
    elif k == "JSON":
        out = json_strings(values) if json_mapping == "keyword" else values.cast(pa.string())
    elif k == "ARRAY":
        out = pa.array([None if v is None else json.dumps(v, default=str)
                        for v in values.to_pylist()], type=pa.string())
    elif t.is_string:
        out = json_strings(values)
    else:  # DECIMAL, DATE, TIMESTAMP*, binary: text without characters to escape
        out = _quote(_text(values, t))
    return pc.fill_null(out, _NULL)


def document_ids(rows: pa.Table, schema: TableSchema, delimiter: str) -> pa.Array:
    """The ``_id`` of every row (plain text, not yet JSON)."""
    parts = [pc.fill_null(_text(rows.column(name).combine_chunks(), schema.column(name).type),
                          _NULL)
             for name in schema.primary_key]
    if len(parts) == 1:
        return parts[0]
    return pc.binary_join_element_wise(*parts, delimiter)


def bulk_lines(rows: pa.Table, schema: TableSchema, deletes: np.ndarray, versions: np.ndarray,
               index: str, ids: pa.Array, version_type: str, decimal: str, timestamp: str,
               json_mapping: str) -> pa.Array:
    """One element per row: its action line and, unless it deletes, its document line, each
    ending in a newline.  Concatenated they are a bulk request body."""
    id_json = json_strings(ids)
    meta = ['{"_index":', json.dumps(index), ',"_id":', id_json, ',"version":',
            pa.array(versions, type=pa.int64()).cast(pa.string()),
            f',"version_type":"{version_type}"}}}}\n']
    delete_line = pc.binary_join_element_wise('{"delete":', *meta, "")
    if deletes.all():
        return delete_line
    parts: list[Any] = []
    for i, col in enumerate(schema.columns):
        parts.append(("{" if i == 0 else ",") + json.dumps(col.name) + ":")
        parts.append(json_values(rows.column(col.name).combine_chunks(), col.type, json_mapping))
    parts.append("}\n")
    index_line = pc.binary_join_element_wise('{"index":', *meta, *parts, "")
    if not deletes.any():
        return index_line
    return pc.if_else(pa.array(deletes), delete_line, index_line)


def body_chunks(lines: pa.Array, max_actions: int, max_bytes: int) -> list[tuple[int, int]]:
    """``[start, stop)`` row ranges of bulk requests: at most ``max_actions`` rows and
    ``max_bytes`` bytes each (a single larger row gets a request of its own)."""
    offsets = _offsets(lines)
    n = len(lines)
    chunks = []
    start = 0
    while start < n:
        limit = min(n, start + max_actions)
        stop = int(np.searchsorted(offsets, offsets[start] + max_bytes, side="right")) - 1
        stop = max(start + 1, min(stop, limit))
        chunks.append((start, stop))
        start = stop
    return chunks


def body_bytes(lines: pa.Array, start: int, stop: int) -> bytes:
    """The concatenated lines ``[start, stop)`` (no copy per line)."""
    offsets = _offsets(lines)
    data = lines.buffers()[2]
    return data[int(offsets[start]):int(offsets[stop])].to_pybytes()


def _offsets(lines: pa.Array) -> np.ndarray:
    width = np.int64 if pa.types.is_large_string(lines.type) else np.int32
    raw = np.frombuffer(lines.buffers()[1], dtype=width)
    return raw[lines.offset: lines.offset + len(lines) + 1].astype(np.int64)
