"""Our columns in the value encodings of Debezium's MySQL connector, and their Connect schemas.

Each column becomes an Arrow array whose plain JSON text (:func:`formats.message.values.
object_texts`) is what Debezium writes for it, with the modes of
:class:`~formats.codec.debezium_types.Modes` (defaults: Debezium's):

=====================  =======================================================================
DECIMAL(p,s)           ``precise``: base64 of the unscaled two's-complement big-endian integer,
                       ``org.apache.kafka.connect.data.Decimal`` (scale, precision);
                       ``string``: exact text; ``double``: a JSON number
DATE                   days since 1970-01-01, ``io.debezium.time.Date``
TIME(p)                micros ``io.debezium.time.MicroTime`` (``adaptive_time_microseconds``),
                       by precision (``adaptive``) or millis (``connect``)
TIMESTAMP(p)           DATETIME: epoch millis ``io.debezium.time.Timestamp`` (p <= 3) or micros
                       ``io.debezium.time.MicroTimestamp`` (p <= 6)
TIMESTAMP_LTZ(p)       TIMESTAMP: ISO-8601 in UTC with ``Z`` and p fractional digits,
                       ``io.debezium.time.ZonedTimestamp``
ARRAY<STRING>          SET: the members comma-separated, ``io.debezium.data.EnumSet``
JSON                   the JSON text as a string, ``io.debezium.data.Json``
BINARY/BYTES           base64 (Connect bytes, as JsonConverter writes them)
others                 Connect's primitive of the type
=====================  =======================================================================

A value a mode can't carry exactly (sub-millisecond digits under millis, a SET member with a
comma) raises ValueError naming the column: nothing is rounded silently.  The logical type
itself goes into the field's ``hub.logical-type`` parameter (Connect parameters are free-form:
Debezium consumers ignore it), so our reader gets back the exact type (lengths, precisions)
that Debezium's schema does not carry.

What the logical types cannot tell apart comes from the column's MySQL type
(``Column.source_type``, :func:`formats.mysqltypes.source_type`), as Debezium's MySQL
connector names it:

=====================  =======================================================================
ENUM                   the member, ``io.debezium.data.Enum`` with ``allowed`` (the members)
SET                    ``io.debezium.data.EnumSet`` with ``allowed``
BIT(n), n > 1          the bytes little-endian (Debezium's order; MySQL's is big-endian),
                       ``io.debezium.data.Bits`` with ``length``
YEAR                   int32, ``io.debezium.time.Year``
GEOMETRY & subtypes    ``{"wkb": base64 WKB, "srid": int or null}``,
                       ``io.debezium.data.geometry.Geometry``; POINT columns
                       ``{"x", "y", "wkb", "srid"}``, ``io.debezium.data.geometry.Point``
                       (the SRID from the hub's EWKB value, :mod:`formats.codec.geometry`;
                       null for SRID 0, as Debezium)
=====================  =======================================================================

Columns without a source type are written as their logical type says (an ENUM that reached
us as STRING from another source is a plain string).  BIGINT UNSIGNED is DECIMAL(20,0)
(Debezium's ``bigint.unsigned.handling.mode = precise``).
"""
from __future__ import annotations

import binascii
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from formats.codec.debezium_types import LOGICAL_PARAM, Modes
from formats.codec.geometry import point_xy, split_ewkb
from formats.mysqltypes import GEOMETRY_TYPES, members
from runtime.schema import Column, TableSchema
from runtime.types import T

_NS = {"s": 1_000_000_000, "ms": 1_000_000, "us": 1_000, "ns": 1}
# TINYINT is int16 as in Debezium (MySQL's TINYINT may be unsigned: JdbcValueConverters)
_PRIMITIVE = {"BOOLEAN": "boolean", "TINYINT": "int16", "SMALLINT": "int16", "INT": "int32",
              "BIGINT": "int64", "FLOAT": "float", "DOUBLE": "double", "BINARY": "bytes",
              "VARBINARY": "bytes", "BYTES": "bytes"}
#: types whose Connect schema says all there is to say (no hub.logical-type parameter)
_PLAIN = frozenset({"BOOLEAN", "SMALLINT", "INT", "BIGINT", "FLOAT", "DOUBLE",
                    "STRING", "BYTES", "DATE", "JSON"})


def encoded_column(arr: pa.Array, col: Column, modes: Modes) -> tuple[pa.Array, Column]:
    """``arr`` (the column ``col``) as the array whose JSON text is Debezium's encoding, and
    the column describing that array for :func:`~formats.message.values.object_texts`."""
    t = col.type
    k = t.kind
    st = col.source_type
    try:
        if is_geometry(col) and t.is_binary:
            return _geometry_text(arr, st == "point"), Column(col.name, T("JSON"), col.nullable)
        if st is not None and st.startswith("bit(") and t.is_binary:
            return _little_endian(arr, _bit_bytes(st)), col
        if k == "DECIMAL":
            if modes.decimal == "precise":
                return _decimal_base64(arr), Column(col.name, T("STRING"), col.nullable)
            if modes.decimal == "string":
                return arr.cast(pa.string()), Column(col.name, T("STRING"), col.nullable)
            return arr.cast(pa.float64()), Column(col.name, T("DOUBLE"), col.nullable)
        if k == "DATE":
            return arr.cast(pa.int32()), Column(col.name, T("INT"), col.nullable)
        if k in ("TIME", "TIMESTAMP"):
            unit, _ = modes.time_unit(k, t.precision)
            return _epoch_integers(arr, unit), Column(col.name, T("BIGINT"), col.nullable)
        if k == "TIMESTAMP_LTZ":
            return _zoned_text(arr, t.precision or 0), Column(col.name, T("STRING"),
                                                              col.nullable)
        if k == "ARRAY" and t.element is not None and t.element.is_string:
            return _set_text(arr), Column(col.name, T("STRING"), col.nullable)
    except ValueError as exc:
        raise ValueError(f"column {col.name!r}: {exc}") from None
    return arr, col


def encoded_batch(rb: pa.RecordBatch, schema: TableSchema, modes: Modes
                  ) -> tuple[pa.RecordBatch, TableSchema, frozenset[str]]:
    """Every column of ``rb`` through :func:`encoded_column`, and the names of the columns
    whose texts are JSON objects to embed as they are (Connect structs: geometries)."""
    arrays, cols = [], []
    for c, arr in zip(schema.columns, rb.columns):
        a, col = encoded_column(arr, c, modes)
        arrays.append(a)
        cols.append(col)
    out = TableSchema(schema.table, tuple(cols), schema.primary_key)
    structs = frozenset(c.name for c in schema.columns if is_geometry(c) and c.type.is_binary)
    return pa.RecordBatch.from_arrays(arrays, names=[c.name for c in cols]), out, structs


def is_geometry(col: Column) -> bool:
    return col.source_type in GEOMETRY_TYPES


def _bit_bytes(source_type: str) -> int:
    bits = int(source_type[4:-1])
    return (bits + 7) // 8


def _little_endian(arr: pa.Array, width: int) -> pa.Array:
    """BIT(n) values (MySQL's big-endian bytes) in Debezium's order: little-endian, padded to
    the column's ``width`` bytes (``JdbcValueConverters.convertBits``).  Per value: BIT
    columns are few and narrow."""
    return pa.array([None if v is None else v[::-1].ljust(width, b"\0")
                     for v in arr.to_pylist()], pa.binary())


def _geometry_text(arr: pa.Array, point: bool) -> pa.Array:
    """Debezium's Geometry (or Point) struct of each value as JSON text (per value: geometries
    are rare and their WKB has to be taken apart for the SRID)."""
    b64 = binascii.b2a_base64
    out: list[str | None] = []
    for v in arr.to_pylist():
        if v is None:
            out.append(None)
            continue
        wkb, srid = split_ewkb(v)
        text = b64(wkb, newline=False).decode("ascii")
        srid_text = "null" if srid is None else str(srid)
        if point:
            x, y = point_xy(wkb)
            out.append(f'{{"x":{x!r},"y":{y!r},"wkb":"{text}","srid":{srid_text}}}')
        else:
            out.append(f'{{"wkb":"{text}","srid":{srid_text}}}')
    return pa.array(out, pa.string())


def _decimal_base64(arr: pa.Array) -> pa.Array:
    """Base64 of Java's ``BigInteger.toByteArray`` of each unscaled value (the fewest bytes of
    two's complement, big-endian).  Unscaled values that fit 64 bits (DECIMAL(p <= 18), and
    most values of wider ones) are encoded with numpy, the others per value."""
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    n = len(arr)
    width = arr.type.byte_width
    words = np.frombuffer(arr.buffers()[1], np.int64, n * width // 8, arr.offset * width)
    words = words.reshape(n, width // 8)
    low = words[:, 0]
    # the value fits 64 bits when every higher word is the sign extension of the low word
    sign = np.where(low < 0, -1, 0)
    fits = (words[:, 1:] == sign[:, None]).all(axis=1)
    valid = arr.is_valid().to_numpy(zero_copy_only=False)
    out = np.empty(n, dtype=object)
    small = np.flatnonzero(fits & valid)
    if len(small):
        texts, order = _base64_int64(low[small])
        out[small[order]] = texts
    b2a = binascii.b2a_base64
    for i in np.flatnonzero(~fits & valid):
        x = int.from_bytes(words[i].tobytes(), "little", signed=True)
        size = (x if x >= 0 else ~x).bit_length() // 8 + 1
        out[i] = b2a(x.to_bytes(size, "big", signed=True), newline=False).decode("ascii")
    out[~valid] = None
    return pa.array(out, pa.string())


def _base64_int64(x: np.ndarray) -> tuple[list[str], np.ndarray]:
    """Base64 of the minimal big-endian two's complement of each int64, grouped by byte length
    (values of one length are padded to whole 3-byte groups and encoded in one call): the
    texts and, for each, its index in ``x``."""
    size = np.ones(len(x), np.int64)
    for k in range(1, 8):  # one more byte for each power of 256 the value reaches
        bound = 1 << (8 * k - 1)
        size += (x >= bound) | (x < -bound)
    be = x.astype(">i8").view(np.uint8).reshape(len(x), 8)
    texts: list[str] = []
    order: list[np.ndarray] = []
    for length in np.unique(size):
        idx = np.flatnonzero(size == length)
        pad = (3 - length % 3) % 3
        rows = np.zeros((len(idx), length + pad), np.uint8)
        rows[:, :length] = be[idx, 8 - length:]
        chars = np.frombuffer(binascii.b2a_base64(rows.tobytes(), newline=False), np.uint8)
        chars = chars.reshape(len(idx), (length + pad) // 3 * 4).copy()
        if pad:
            chars[:, -pad:] = ord("=")
        texts.extend(chars.view(f"S{chars.shape[1]}").ravel().astype(str).tolist())
        order.append(idx)
    return texts, np.concatenate(order)


def _epoch_integers(arr: pa.Array, unit_ns: int) -> pa.Array:
    """Durations / timestamps as integers of ``unit_ns`` nanoseconds; a value with digits
    below the unit raises ValueError (no silent truncation)."""
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    src = _NS[arr.type.unit]
    v = arr.cast(pa.int64())
    if src == unit_ns:
        return v
    if src > unit_ns:
        return pc.multiply(v, src // unit_ns)
    factor = unit_ns // src
    n = v.fill_null(0).to_numpy()
    q, r = np.divmod(n, factor)
    if r.any():
        bad = int(np.flatnonzero(r)[0])
        raise ValueError(f"{arr[bad]} has digits below the {_unit_name(unit_ns)} this "
                         "time.precision.mode writes")
    return pa.array(q, pa.int64(), mask=v.is_null().to_numpy(zero_copy_only=False))


def _unit_name(unit_ns: int) -> str:
    return {1_000_000: "millisecond", 1_000: "microsecond"}.get(unit_ns, "nanosecond")


def _zoned_text(arr: pa.Array, precision: int) -> pa.Array:
    """ISO-8601 UTC text with a ``Z`` and ``precision`` fractional digits (Debezium's
    ZonedTimestamp of a TIMESTAMP(p) column, e.g. ``2018-06-20T13:37:03Z``)."""
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    digits = 9 if arr.type.unit == "ns" else 6
    unit = "ns" if digits == 9 else "us"
    v = arr.cast(pa.timestamp(unit, "UTC"))
    keep = min(precision, digits)
    if keep < digits:
        ints = v.cast(pa.int64()).fill_null(0).to_numpy()
        if (ints % 10 ** (digits - keep)).any():
            raise ValueError(f"a value has more fractional digits than TIMESTAMP({precision})")
    # Arrow prints "2018-06-20 13:37:03.000000Z" (10x faster than strftime); with every text
    # of one width (four-digit years), the T, the cut and the Z are one numpy copy
    filled = v.fill_null(pa.scalar(0, v.type)) if v.null_count else v
    s = filled.cast(pa.string())
    n = len(s)
    off = np.frombuffer(s.buffers()[1], np.int32, n + 1, s.offset * 4)
    w = int(off[1] - off[0]) if n else 0
    head = 20 + keep if keep else 19  # "YYYY-MM-DD HH:MM:SS" and the kept ".fff"
    if n and w == 21 + digits and int(off[-1] - off[0]) == n * w:
        data = np.frombuffer(s.buffers()[2], np.uint8)[off[0]:off[-1]].reshape(n, w)
        out = np.empty((n, head + 1), np.uint8)
        out[:, :head] = data[:, :head]
        out[:, 10] = ord("T")
        out[:, head] = ord("Z")
        texts = pa.Array.from_buffers(pa.string(), n, [
            None, pa.py_buffer(np.arange(0, n * (head + 1) + 1, head + 1, dtype=np.int32)),
            pa.py_buffer(out)])
    else:
        drop = digits - keep + 1 + (0 if keep else 1)  # the dropped digits (and dot), the Z
        texts = pc.binary_join_element_wise(pc.utf8_slice_codeunits(
            pc.replace_substring(s, " ", "T", max_replacements=1), 0, -drop), "Z", "")
    if v.null_count:
        texts = pc.if_else(v.is_valid(), texts, pa.scalar(None, pa.string()))
    return texts


def _set_text(arr: pa.Array) -> pa.Array:
    """Lists of strings as comma-separated text (Debezium's SET); a member with a comma has no
    such text: ValueError."""
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    items = arr.values
    if len(items) and pc.any(pc.match_substring(items, ",")).as_py():
        raise ValueError("a SET member holds a comma: Debezium's comma-separated text can't "
                         "carry it")
    return pc.binary_join(arr, ",")


# -- Connect schemas --------------------------------------------------------------------------
def debezium_field(c: Column, modes: Modes) -> dict[str, Any]:
    """The Connect field schema Debezium gives a column of this logical type."""
    t = c.type
    k = t.kind
    st = c.source_type
    f: dict[str, Any] = {"type": _PRIMITIVE.get(k, "string"), "optional": c.nullable}
    if st is not None and (named := _source_field(st, t)) is not None:
        f.update(named)
    elif k == "DECIMAL":
        if modes.decimal == "precise":
            f.update(type="bytes", name="org.apache.kafka.connect.data.Decimal", version=1,
                     parameters={"scale": str(t.scale or 0),
                                 "connect.decimal.precision": str(t.precision)})
        elif modes.decimal == "double":
            f["type"] = "double"
    elif k == "DATE":
        f.update(type="int32", name="io.debezium.time.Date", version=1)
    elif k in ("TIME", "TIMESTAMP"):
        unit, name = modes.time_unit(k, t.precision)
        millis_time = k == "TIME" and unit == 1_000_000
        f.update(type="int32" if millis_time else "int64", name=name, version=1)
    elif k == "TIMESTAMP_LTZ":
        f.update(name="io.debezium.time.ZonedTimestamp", version=1)
    elif k == "JSON":
        f.update(name="io.debezium.data.Json", version=1)
    elif k == "ARRAY":
        if t.element is not None and t.element.is_string:
            f.update(name="io.debezium.data.EnumSet", version=1)
        else:
            elem = debezium_field(Column("", t.element or T("STRING")), modes)
            elem.pop("field", None)
            f.update(type="array", items=elem)
    if k not in _PLAIN:
        f.setdefault("parameters", {})[LOGICAL_PARAM] = str(t)
    f["field"] = c.name
    return f


_GEOMETRY_FIELDS = [{"type": "bytes", "optional": False, "field": "wkb"},
                    {"type": "int32", "optional": True, "field": "srid"}]
_POINT_FIELDS = [{"type": "double", "optional": False, "field": "x"},
                 {"type": "double", "optional": False, "field": "y"},
                 {"type": "bytes", "optional": True, "field": "wkb"},
                 {"type": "int32", "optional": True, "field": "srid"}]


def _source_field(st: str, t: Any) -> dict[str, Any] | None:
    """The Connect schema Debezium's MySQL connector gives a column of MySQL type ``st``
    (``MySqlValueConverters.schemaBuilder``), where the logical type ``t`` is the one the
    hub maps that MySQL type to (else None: the column was retyped on the way)."""
    if st.startswith("enum(") and t.is_string:
        return {"type": "string", "name": "io.debezium.data.Enum", "version": 1,
                "parameters": {"allowed": ",".join(members(st))}}
    if st.startswith("set(") and t.kind == "ARRAY":
        return {"type": "string", "name": "io.debezium.data.EnumSet", "version": 1,
                "parameters": {"allowed": ",".join(members(st))}}
    if st.startswith("bit(") and t.is_binary:
        return {"type": "bytes", "name": "io.debezium.data.Bits", "version": 1,
                "parameters": {"length": st[4:-1]}}
    if st == "year" and t.kind == "INT":
        return {"type": "int32", "name": "io.debezium.time.Year", "version": 1}
    if st == "point" and t.is_binary:
        return {"type": "struct", "fields": _POINT_FIELDS,
                "name": "io.debezium.data.geometry.Point", "version": 1,
                "doc": "Geometry (POINT)"}
    if st in GEOMETRY_TYPES and t.is_binary:
        return {"type": "struct", "fields": _GEOMETRY_FIELDS,
                "name": "io.debezium.data.geometry.Geometry", "version": 1, "doc": "Geometry"}
    return None


def debezium_struct(schema: TableSchema, name: str, modes: Modes,
                    optional: bool = True) -> dict[str, Any]:
    return {"type": "struct", "fields": [debezium_field(c, modes) for c in schema.columns],
            "optional": optional, "name": name}
