"""Rowkeys and cell values from logical types, a column at a time.

Rowkey (the primary key; HBase sorts rowkeys as unsigned bytes, and this encoding keeps the
order of the key values):

==========================  ========================================================
TINYINT..BIGINT             big-endian two's complement of 1/2/4/8 bytes with the sign bit
                            flipped (-1 < 0 < 1 sort as 7F..FF < 80..00 < 80..01)
BOOLEAN                     one byte 00 / 01
DATE                        int32 days since 1970-01-01, as integers
TIME, TIMESTAMP(_LTZ)       int64 microseconds (since midnight / the epoch), as integers
FLOAT, DOUBLE               IEEE 754 big-endian; sign bit flipped for positives, every bit
                            flipped for negatives
DECIMAL(p,s)                the unscaled value as a 16-byte (p <= 38) or 32-byte integer
CHAR, VARCHAR, STRING,      the UTF-8 / raw bytes; in a composite key, a part other than the
BINARY, BYTES, JSON         last has 00 escaped as 00 FF and ends with 00 00
==========================  ========================================================

A composite key is the concatenation of its parts in primary-key order.

Cell values, ``value-encoding = "string"``: the text of the value (integers and decimals in
decimal, floats shortest round-trip, ``true``/``false``, dates and timestamps ISO 8601 as in
the Elasticsearch sink, TIME as microseconds, JSON and ARRAY as JSON text); binary columns
keep their bytes.  ``"binary"``: what HBase's ``Bytes.toBytes`` gives for the Java type:
BOOLEAN one byte FF/00, TINYINT..BIGINT 1/2/4/8-byte big-endian, FLOAT/DOUBLE IEEE 754,
DECIMAL ``Bytes.toBytes(BigDecimal)`` (4-byte scale + two's complement unscaled value), DATE
int32 days, TIME/TIMESTAMP int64 microseconds, text as UTF-8.  A NULL value deletes the cell.
"""
from __future__ import annotations

import decimal
import json

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from runtime.schema import TableSchema
from runtime.types import DataType

_WIDTH = {"TINYINT": 1, "SMALLINT": 2, "INT": 4, "BIGINT": 8, "DATE": 4, "TIME": 8,
          "TIMESTAMP": 8, "TIMESTAMP_LTZ": 8}


def fixed_width(data: bytes | np.ndarray, width: int, n: int) -> pa.Array:
    """``n`` binary values of ``width`` bytes each, cut from ``data`` (no copy per value)."""
    offsets = np.arange(0, (n + 1) * width, width, dtype=np.int32)
    raw = data.tobytes() if isinstance(data, np.ndarray) else data
    return pa.Array.from_buffers(pa.binary(), n, [None, pa.py_buffer(offsets), pa.py_buffer(raw)])


def _integers(values: pa.Array, t: DataType) -> np.ndarray:
    """Integer-like values as int64 (temporal types in days or microseconds; NULL as 0)."""
    k = t.kind
    unit = getattr(values.type, "unit", None)
    if pa.types.is_temporal(values.type):  # days, or ticks of ``unit``
        values = values.view(pa.int32() if values.type.bit_width == 32 else pa.int64())
    if values.null_count:
        values = pc.fill_null(values, 0)
    ints = values.cast(pa.int64()).to_numpy(zero_copy_only=False)
    if k in ("TIME", "TIMESTAMP", "TIMESTAMP_LTZ"):
        return ints // 1000 if unit == "ns" else ints * {"us": 1, "ms": 1000, "s": 1_000_000}[unit]
    return ints


def _decimal_bytes(values: pa.Array) -> tuple[np.ndarray, int]:
    """Big-endian two's complement unscaled values, one row per line."""
    width = 16 if pa.types.is_decimal128(values.type) else 32
    raw = np.frombuffer(values.buffers()[1], dtype=np.uint8)
    raw = raw[values.offset * width:(values.offset + len(values)) * width].reshape(-1, width)
    return raw[:, ::-1].copy(), width


def key_part(values: pa.Array, t: DataType, last: bool) -> pa.Array:
    """One rowkey part per row, as a binary array (see the module docs)."""
    k, n = t.kind, len(values)
    if t.is_integer or k in _WIDTH:
        width = _WIDTH[k]
        ints = _integers(values, t).astype(np.int64)
        flipped = (ints.astype(f"<i{width}").view(f"<u{width}")
                   ^ np.array(1 << (width * 8 - 1), dtype=f"<u{width}"))
        return fixed_width(flipped.astype(f">u{width}"), width, n)
    if k == "BOOLEAN":
        return fixed_width(pc.fill_null(values, False).cast(pa.uint8()).to_numpy(
            zero_copy_only=False), 1, n)
    if k in ("FLOAT", "DOUBLE"):
        width = 4 if k == "FLOAT" else 8
        bits = values.to_numpy(zero_copy_only=False).astype(f"<f{width}").view(f"<u{width}")
        sign = np.array(1 << (width * 8 - 1), dtype=f"<u{width}")
        flipped = np.where(bits & sign, ~bits, bits | sign).astype(f"<u{width}")
        return fixed_width(flipped.astype(f">u{width}"), width, n)
    if k == "DECIMAL":
        rows, width = _decimal_bytes(values)
        rows[:, 0] ^= 0x80
        return fixed_width(rows, width, n)
    raw = values.cast(pa.binary())
    if last:
        return raw
    return pc.binary_join_element_wise(pc.replace_substring(raw, b"\x00", b"\x00\xff"),
                                       b"\x00\x00", b"")


def rowkeys(rows: pa.Table, schema: TableSchema) -> pa.Array:
    """The rowkey of every row, as a binary array."""
    names = schema.primary_key
    parts = [key_part(rows.column(name).combine_chunks(), schema.column(name).type,
                      i == len(names) - 1)
             for i, name in enumerate(names)]
    if len(parts) == 1:
        return parts[0]
    return pc.binary_join_element_wise(*parts, b"")


def _text(values: pa.Array, t: DataType) -> pa.Array:
    k = t.kind
    if k in ("TIMESTAMP", "TIMESTAMP_LTZ"):
        text = pc.strftime(values, format="%Y-%m-%dT%H:%M:%S")
        return pc.binary_join_element_wise(text, "Z", "") if k == "TIMESTAMP_LTZ" else text
    if k == "TIME":
        return _with_nulls(pa.array(_integers(values, t)).cast(pa.string()), values)
    if k == "ARRAY":
        return pa.array([None if v is None else json.dumps(v, default=str)
                         for v in values.to_pylist()], type=pa.string())
    return values.cast(pa.string())


def cell_values(values: pa.Array, t: DataType, encoding: str) -> pa.Array:
    """The cell value of every row, as a binary array (null for NULL)."""
    k, n = t.kind, len(values)
    if t.is_binary:
        return values.cast(pa.binary())
    if encoding == "binary":
        if k == "BOOLEAN":
            flags = pc.fill_null(values, False).cast(pa.uint8()).to_numpy(zero_copy_only=False)
            return _with_nulls(fixed_width((flags * 0xFF).astype(np.uint8), 1, n), values)
        if t.is_integer or k in _WIDTH:
            width = _WIDTH[k]
            ints = _integers(values, t).astype(f">i{width}")
            return _with_nulls(fixed_width(ints, width, n), values)
        if k in ("FLOAT", "DOUBLE"):
            width = 4 if k == "FLOAT" else 8
            filled = pc.fill_null(values, 0) if values.null_count else values
            floats = filled.to_numpy(zero_copy_only=False).astype(f">f{width}")
            return _with_nulls(fixed_width(floats, width, n), values)
        if k == "DECIMAL":
            return pa.array([None if v is None else _big_decimal(v) for v in values.to_pylist()],
                            type=pa.binary())
    return _text(values, t).cast(pa.binary())


def _with_nulls(out: pa.Array, values: pa.Array) -> pa.Array:
    """``out`` with nulls where ``values`` has them."""
    if not values.null_count:
        return out
    return pc.if_else(values.is_valid(), out, pa.scalar(None, out.type))


def _big_decimal(v: decimal.Decimal) -> bytes:
    """Java ``Bytes.toBytes(BigDecimal)``: int32 scale, then ``BigInteger.toByteArray()``."""
    sign, digits, exponent = v.as_tuple()
    unscaled = int("".join(map(str, digits)) or "0") * (-1 if sign else 1)
    scale = -int(exponent)
    size = max(1, (unscaled.bit_length() + 8) // 8)  # minimal, with room for the sign bit
    return scale.to_bytes(4, "big", signed=True) + unscaled.to_bytes(size, "big", signed=True)


def decode_int_key(key: bytes) -> int:
    """An integer rowkey part back to its value (for tools and tests)."""
    width = len(key)
    return int.from_bytes(key, "big") - (1 << (width * 8 - 1))
