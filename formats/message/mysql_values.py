"""Values as the MySQL-side tools write them: Canal's strings and Maxwell's JSON values, and
the ``old`` object both write for an update (only the columns the update changed).

Both print DATETIME and TIMESTAMP as MySQL does, ``YYYY-MM-DD hh:mm:ss`` with as many
fractional digits as the column declares (``2016-10-21 05:33:37.523000`` for a
``timestamp(6)``); TIMESTAMP values in UTC (Maxwell's rule; Canal prints them in its JVM's
zone, which the hub runs as UTC).  Vectorised per column: no Python work per row except for
BIT(n) and binary values in Canal's forms.
"""
from __future__ import annotations

import json
from collections.abc import Collection

import pyarrow as pa
import pyarrow.compute as pc

from formats.codec.text import json_text, text
from runtime.batch import ChangeBatch
from runtime.schema import Column, TableSchema
from runtime.types import T


def datetime_text(arr: pa.Array, precision: int) -> pa.Array:
    """``YYYY-MM-DD hh:mm:ss[.f]`` with ``precision`` fractional digits (a timestamp array,
    naive or UTC)."""
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    unit = "ns" if arr.type.unit == "ns" else "us"
    digits = 9 if unit == "ns" else 6
    naive = arr.cast(pa.timestamp(unit, arr.type.tz)).cast(pa.int64()).cast(pa.timestamp(unit))
    s = naive.cast(pa.string())  # "2016-10-21 05:33:37.523000", all digits of the unit
    keep = min(precision, digits)
    # the text's tail after the seconds: "." and the unit's digits; years beyond four digits
    # don't exist in MySQL
    drop = digits - keep + (0 if keep else 1)
    return pc.utf8_slice_codeunits(s, 0, -drop) if drop else s


def mysql_columns(rb: pa.RecordBatch, schema: TableSchema, *, decimals_raw: bool
                  ) -> tuple[pa.RecordBatch, TableSchema, frozenset[str]]:
    """``rb`` with DATETIME/TIMESTAMP columns as MySQL's text (STRING columns) and, with
    ``decimals_raw``, DECIMAL columns as JSON number texts (named in the returned set: to
    embed as they are)."""
    arrays, cols, raw = list(rb.columns), list(schema.columns), set()
    for i, c in enumerate(schema.columns):
        k = c.type.kind
        if k in ("TIMESTAMP", "TIMESTAMP_LTZ"):
            arrays[i] = datetime_text(arrays[i], c.type.precision or 0)
            cols[i] = Column(c.name, T("STRING"), c.nullable)
        elif k == "DECIMAL" and decimals_raw:
            arrays[i] = arrays[i].cast(pa.string())
            cols[i] = Column(c.name, T("STRING"), c.nullable)
            raw.add(c.name)
    out = schema.with_columns(tuple(cols))
    return pa.RecordBatch.from_arrays(arrays, schema=out.arrow_schema), out, frozenset(raw)


def canal_strings(rb: pa.RecordBatch, schema: TableSchema
                  ) -> tuple[pa.RecordBatch, TableSchema]:
    """Every column as Canal's string of its value (FlatMessage's ``Map<String, String>``):
    numbers and dates as MySQL prints them, BIT(1) ``1``/``0``, BIT(n) the unsigned integer
    of its bits, SET members comma-separated, JSON its text, binary values as ISO-8859-1
    text."""
    arrays, cols = list(rb.columns), []
    for i, c in enumerate(schema.columns):
        a, t, st = arrays[i], c.type, c.source_type
        if isinstance(a, pa.ChunkedArray):
            a = a.combine_chunks()
        k = t.kind
        if k in ("TIMESTAMP", "TIMESTAMP_LTZ"):
            a = datetime_text(a, t.precision or 0)
        elif k == "BOOLEAN":
            a = pc.if_else(a, "1", "0")
        elif t.is_binary and st is not None and st.startswith("bit("):
            a = pa.array([None if v is None else str(int.from_bytes(v, "big"))
                          for v in a.to_pylist()], pa.string())
        elif t.is_binary:
            a = pa.array([None if v is None else v.decode("latin-1") for v in a.to_pylist()],
                         pa.string())
        elif k == "ARRAY":
            a = pc.binary_join(a, ",")
        elif k == "TIME":
            a = text(a)
        elif not pa.types.is_string(a.type):
            a = text(a)
        arrays[i] = a
        cols.append(Column(c.name, T("STRING"), c.nullable))
    out = schema.with_columns(tuple(cols))
    return pa.RecordBatch.from_arrays(arrays, schema=out.arrow_schema), out


def _field_texts(rb: pa.RecordBatch, schema: TableSchema, raw: Collection[str]
                 ) -> list[pa.Array]:
    out = []
    for c, col in zip(schema.columns, rb.columns):
        if c.name in raw:
            out.append(col.fill_null("null"))
        else:
            out.append(json_text(col, raw_json=c.type.kind == "JSON"))
    return out


def changed_texts(batch: ChangeBatch, after: pa.RecordBatch, before: pa.RecordBatch | None,
                  schema: TableSchema, raw: Collection[str] = ()) -> pa.Array:
    """Per event, the JSON object of the columns an update changed with their values before
    it (Maxwell's and Canal's ``old``), ``null`` for events without a before image.
    ``after`` and ``before`` are the row images already in the format's value forms (the
    same forms: a column changed when its texts differ)."""
    n = len(batch)
    if before is None:
        return pa.array(["null"] * n, pa.string())
    pieces = []
    for c, a, b in zip(schema.columns, _field_texts(after, schema, raw),
                       _field_texts(before, schema, raw)):
        changed = pc.not_equal(a, b)
        name = "," + json.dumps(c.name, ensure_ascii=False) + ":"
        pieces.append(pc.if_else(changed, pc.binary_join_element_wise(name, b, ""), ""))
    joined = pc.binary_join_element_wise(*pieces, "") if pieces else pa.array([""] * n)
    objects = pc.binary_join_element_wise("{", pc.utf8_slice_codeunits(joined, 1), "}", "")
    mask = pa.array([x is not None for x in batch.before])  # type: ignore[union-attr]
    return pc.if_else(mask, objects, pa.scalar("null"))


def before_batch(batch: ChangeBatch) -> pa.RecordBatch | None:
    """The before images of ``batch`` as a record batch (all-null rows where there is none),
    or None when no event has one."""
    if batch.before is None or all(b is None for b in batch.before):
        return None
    width = len(batch.schema.columns)
    rows = [b if b is not None else (None,) * width for b in batch.before]
    return ChangeBatch(batch.schema, batch.ops, rows=rows).arrow()
