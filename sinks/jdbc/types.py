"""Logical types -> SQL column types, and Arrow columns -> SQL text, a column at a time.

Values are never converted one Python object at a time (except ARRAY values, which no
vectorised text form exists for): each column becomes one Arrow string array, built by Arrow
compute kernels and numpy, which a dialect then sends as COPY CSV (PostgreSQL) or as SQL
literals (MySQL/MariaDB).
"""
from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from runtime.types import DataType

_HEX = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)
_INT_RANK = {"TINYINT": 1, "SMALLINT": 2, "INT": 3, "BIGINT": 4}


# -- column types ------------------------------------------------------------------------------
def postgres_type(t: DataType, json_type: str = "jsonb") -> str:
    """PostgreSQL column type holding every value of ``t`` exactly.

    * TIME -> ``interval(p)``: a MySQL TIME is a signed duration (-838:59:59 .. 838:59:59),
      which PostgreSQL's ``time`` (00:00 .. 24:00) can't hold.
    * CHAR(n) -> ``varchar(n)``: PostgreSQL's ``char(n)`` pads values with blanks (and reads
      them back padded), where MySQL strips them; varchar(n) keeps the value as the source
      has it, with the same limit in characters.
    * JSON -> ``jsonb`` or, with ``json_type = "json"``, ``json``, which keeps the text as
      written (jsonb normalises it).
    """
    k = t.kind
    simple = {"BOOLEAN": "boolean", "TINYINT": "smallint", "SMALLINT": "smallint",
              "INT": "integer", "BIGINT": "bigint", "FLOAT": "real",
              "DOUBLE": "double precision", "STRING": "text", "BINARY": "bytea",
              "VARBINARY": "bytea", "BYTES": "bytea", "DATE": "date", "JSON": json_type}
    if k in simple:
        return simple[k]
    if k == "DECIMAL":
        return f"numeric({t.precision},{t.scale})"
    if k in ("CHAR", "VARCHAR"):
        return f"varchar({t.length})" if t.length else "text"
    if k in ("TIME", "TIMESTAMP", "TIMESTAMP_LTZ"):
        p = min(t.precision if t.precision is not None else 6, 6)
        base = {"TIME": "interval", "TIMESTAMP": "timestamp", "TIMESTAMP_LTZ": "timestamptz"}[k]
        return f"{base}({p})"
    if k == "ARRAY":
        assert t.element is not None
        return f"{postgres_type(t.element, json_type)}[]"
    raise ValueError(f"no PostgreSQL type for {t}")


def mysql_type(t: DataType, is_key: bool = False) -> str:
    """MySQL/MariaDB column type for ``t``.  BINARY(n) becomes VARBINARY(n): MySQL pads
    BINARY with zero bytes, which would change values shorter than n.  Key columns get
    indexable types (no TEXT/BLOB)."""
    k = t.kind
    simple = {"BOOLEAN": "BOOLEAN", "TINYINT": "TINYINT", "SMALLINT": "SMALLINT", "INT": "INT",
              "BIGINT": "BIGINT", "FLOAT": "FLOAT", "DOUBLE": "DOUBLE", "DATE": "DATE",
              "JSON": "JSON", "ARRAY": "JSON"}
    if k in simple:
        return simple[k]
    if k == "DECIMAL":
        return f"DECIMAL({min(t.precision or 10, 65)},{min(t.scale or 0, 30)})"
    if k == "CHAR":
        return f"CHAR({t.length})" if t.length and t.length <= 255 else "LONGTEXT"
    if k in ("VARCHAR", "STRING"):
        if is_key:
            return f"VARCHAR({min(t.length or 768, 768)})"
        return f"VARCHAR({t.length})" if t.length and t.length <= 16383 else "LONGTEXT"
    if k in ("BINARY", "VARBINARY", "BYTES"):
        if is_key:
            return f"VARBINARY({min(t.length or 3072, 3072)})"
        return f"VARBINARY({t.length})" if t.length and t.length <= 65535 else "LONGBLOB"
    if k in ("TIME", "TIMESTAMP", "TIMESTAMP_LTZ"):
        p = min(t.precision if t.precision is not None else 6, 6)
        # TIMESTAMP_LTZ as DATETIME holding UTC: MySQL's TIMESTAMP ends in 2038.
        return f"{'TIME' if k == 'TIME' else 'DATETIME'}({p})"
    raise ValueError(f"no MySQL type for {t}")


def is_widening(old: DataType, new: DataType) -> bool:
    """Whether every value of ``old`` is a value of ``new`` (lenient schema evolution applies
    only such type changes)."""
    if old == new:
        return True
    if old.kind in _INT_RANK and new.kind in _INT_RANK:
        return _INT_RANK[new.kind] >= _INT_RANK[old.kind]
    if old.kind in _INT_RANK and new.kind == "DECIMAL":
        digits = {"TINYINT": 3, "SMALLINT": 5, "INT": 10, "BIGINT": 19}[old.kind]
        return (new.precision or 0) - (new.scale or 0) >= digits
    if old.kind == "DECIMAL" and new.kind == "DECIMAL":
        return ((new.scale or 0) >= (old.scale or 0) and
                (new.precision or 0) - (new.scale or 0) >= (old.precision or 0) - (old.scale or 0))
    if old.kind == "FLOAT" and new.kind == "DOUBLE":
        return True
    if old.is_string and new.is_string:
        return new.kind == "STRING" or (new.length or 0) >= (old.length or 0) > 0
    if old.is_binary and new.is_binary:
        return new.kind == "BYTES" or (new.length or 0) >= (old.length or 0) > 0
    if old.kind in ("TIME", "TIMESTAMP", "TIMESTAMP_LTZ") and new.kind == old.kind:
        return (new.precision or 0) >= (old.precision or 0)
    return False


# -- values as text ----------------------------------------------------------------------------
def hex_text(arr: pa.Array, prefix: str, suffix: str = "") -> pa.Array:
    """Binary values as ``prefix + lowercase hex + suffix`` strings (nulls stay null).
    Keeps every byte, trailing zero bytes included."""
    arr = arr.cast(pa.binary()) if arr.type != pa.binary() else arr
    if arr.offset:
        arr = pa.concat_arrays([arr])  # buffers without a slice offset
    n = len(arr)
    bufs = arr.buffers()
    offsets = np.frombuffer(bufs[1], dtype=np.int32, count=n + 1)
    data = np.frombuffer(bufs[2], dtype=np.uint8) if bufs[2] is not None else np.empty(0, np.uint8)
    body = data[offsets[0]:offsets[-1]]
    out = np.empty(len(body) * 2, dtype=np.uint8)
    out[0::2] = _HEX[body >> 4]
    out[1::2] = _HEX[body & 15]
    new_offsets = ((offsets - offsets[0]) * 2).astype(np.int32)
    hexed = pa.Array.from_buffers(pa.string(), n, [None, pa.py_buffer(new_offsets),
                                                   pa.py_buffer(out)])
    text = pc.binary_join_element_wise(prefix, hexed, suffix, "")
    return pc.if_else(arr.is_valid(), text, pa.scalar(None, pa.string())) if arr.null_count else text


def time_text(arr: pa.Array) -> pa.Array:
    """TIME values (durations) as ``[-]HH:MM:SS.ffffff``; hours may exceed 23 (MySQL)."""
    us = arr.cast(pa.duration("us"), safe=False).cast(pa.int64())
    v = us.fill_null(0).to_numpy(zero_copy_only=False)
    a = np.abs(v)

    def pad(x: np.ndarray, width: int) -> pa.Array:
        return pc.utf8_lpad(pa.array(x).cast(pa.string()), width, "0")

    sign = pa.array(np.where(v < 0, "-", ""))
    text = pc.binary_join_element_wise(
        sign, pad(a // 3_600_000_000, 2), ":", pad(a // 60_000_000 % 60, 2), ":",
        pad(a // 1_000_000 % 60, 2), ".", pad(a % 1_000_000, 6), "")
    return pc.if_else(us.is_valid(), text, pa.scalar(None, pa.string())) if us.null_count else text


def timestamp_text(arr: pa.Array) -> pa.Array:
    """TIMESTAMP as ``YYYY-MM-DD HH:MM:SS.ffffff`` (TIMESTAMP_LTZ: its UTC wall clock)."""
    return arr.cast(pa.timestamp("us"), safe=False).cast(pa.string())


def json_of_lists(arr: pa.Array) -> pa.Array:
    """ARRAY values as JSON text (MySQL JSON columns).  Per value: no vectorised form."""
    return pa.array([None if v is None else json.dumps(v, default=str) for v in arr.to_pylist()],
                    type=pa.string())


def pg_array_text(arr: pa.Array) -> pa.Array:
    """ARRAY values as PostgreSQL array literals ``{"a","b"}``.  Per value."""
    def one(v: list) -> str:
        items = ("NULL" if x is None else
                 '"' + str(x).replace("\\", "\\\\").replace('"', '\\"') + '"' for x in v)
        return "{" + ",".join(items) + "}"

    return pa.array([None if v is None else one(v) for v in arr.to_pylist()], type=pa.string())


def quote_sql_strings(arr: pa.Array) -> pa.Array:
    """Strings as MySQL string literals: backslash, quote and NUL escaped, in quotes."""
    s = arr.cast(pa.string())
    s = pc.replace_substring(s, "\\", "\\\\")
    s = pc.replace_substring(s, "'", "\\'")
    s = pc.replace_substring(s, "\x00", "\\0")
    return pc.binary_join_element_wise("'", s, "'", "")
