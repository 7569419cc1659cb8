"""``JSON_VALUE(json, '$.a.b')`` on a whole column: Arrow's JSON reader parses the column as
newline-delimited JSON in C++, then the path is walked through the struct it infers.

Contract: the result is a STRING column (the value as text, as Flink's JSON_VALUE returns it);
NULL where the input is NULL, not an object, or lacks the path.  A path of object keys only
(``$.a.b``; no array subscripts).  Rows whose values at the same key differ in type (a number
here, an object there) make Arrow's inferencekey fail: that batch's column is then read row by row with the json module (logged once per
path: a heterogeneous JSON column is slow, not wrong).
"""
from __future__ import annotations

import io
import json
import logging
import re

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pj

from runtime.transform.errors import ExprError

log = logging.getLogger(__name__)
_warned: set[str] = set()
_PATH = re.compile(r"^\$((?:\.[A-Za-z_][A-Za-z0-9_]*)+)$")


def parse_path(path: str) -> list[str]:
    m = _PATH.match(path or "")
    if not m:
        raise ValueError(f"JSON path {path!r}: only $.key.key... is supported")
    return m.group(1)[1:].split(".")


def json_value(column: pa.Array | pa.Scalar, path: str) -> pa.Array | pa.Scalar:
    try:
        keys = parse_path(path)
    except ValueError as exc:
        raise ExprError(str(exc)) from None
    if isinstance(column, pa.Scalar):
        return pa.scalar(None, pa.string()) if not column.is_valid else \
            json_value(pa.array([column.as_py()], pa.string()), path)[0]
    if not (pa.types.is_string(column.type) or pa.types.is_large_string(column.type)):
        raise ExprError(f"type error: JSON_VALUE needs a JSON or string column, not {column.type}")
    n = len(column)
    if n == 0:
        return pa.array([], pa.string())
    # one object per line: NULLs and non-objects become {}, raw line breaks (only legal between
    # tokens) become blanks
    text = pc.replace_substring_regex(column, r"[\r\n]", " ")
    is_obj = pc.match_substring_regex(text, r"^\s*\{")
    text = pc.if_else(pc.fill_null(is_obj, False), text, "{}")
    data = pc.binary_join_element_wise(text, "\n", "")  # type: ignore[arg-type]
    big = data.cast(pa.large_string())
    offsets = np.frombuffer(big.buffers()[1], dtype=np.int64)[big.offset:big.offset + n + 1]
    # exactly the rows' bytes: a buffer may be larger than what the array uses
    blob = big.buffers()[2].to_pybytes()[int(offsets[0]):int(offsets[-1])]
    table = _read(blob, keys[0])
    if table is None:
        return _rowwise(column, keys, path)
    if table.num_rows != n:
        raise ExprError("JSON_VALUE: the column holds text that is not one JSON value per row")
    value: pa.Array = table.column(0).combine_chunks() if table.num_columns else pa.nulls(n)
    for key in keys[1:]:
        if not pa.types.is_struct(value.type):
            return pa.nulls(n, pa.string())
        idx = value.type.get_field_index(key)
        if idx < 0:
            return pa.nulls(n, pa.string())
        value = pc.struct_field(value, [idx])
    if pa.types.is_struct(value.type) or pa.types.is_list(value.type):
        return pa.nulls(n, pa.string())  # an object or array is not a scalar value
    return pc.cast(value, pa.string()) if not pa.types.is_null(value.type) else pa.nulls(n, pa.string())


def _read(blob: bytes, first: str) -> pa.Table | None:
    opts = pj.ReadOptions(block_size=max(1 << 20, len(blob) + 1))
    try:
        table = pj.read_json(io.BytesIO(blob), read_options=opts)
    except pa.ArrowInvalid as exc:
        if "changed from" not in str(exc):
            raise
        return None  # the types of a key differ between rows
    if first not in table.column_names:
        return pa.table({first: pa.nulls(table.num_rows)})
    return table.select([first])


def _rowwise(column: pa.Array, keys: list[str], path: str) -> pa.Array:
    if path not in _warned:
        _warned.add(path)
        log.warning("JSON_VALUE(..., %r): the values differ in type between rows; this batch "
                    "is read row by row (slower)", path)
    out: list[str | None] = []
    for text in column.to_pylist():
        v = None if text is None else json.loads(text)
        for k in keys:
            v = v.get(k) if isinstance(v, dict) else None
        out.append(None if v is None or isinstance(v, (dict, list)) else
                   (json.dumps(v) if isinstance(v, bool) else str(v)))
    return pa.array(out, pa.string())
