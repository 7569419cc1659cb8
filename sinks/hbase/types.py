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


def _split_fixed(buf: bytes, width: int, n: int) -> list[bytes]:
    return [buf[i:i + width] for i in range(0, n * width, width)]


def _integers(values: pa.Array, t: DataType) -> np.ndarray:
    """Integer-like values as int64 (temporal types in days or microseconds)."""
    k = t.kind
    if k in ("TIME", "TIMESTAMP", "TIMESTAMP_LTZ"):
        ints = values.cast(pa.int64()).to_numpy(zero_copy_only=False)
        unit = values.type.unit
        return ints // 1000 if unit == "ns" else ints * {"us": 1, "ms": 1000, "s": 1_000_000}[unit]
    if k == "DATE":
        values = values.cast(pa.int32())
    return values.cast(pa.int64()).to_numpy(zero_copy_only=False)


def _decimal_bytes(values: pa.Array) -> tuple[np.ndarray, int]:
    """Big-endian two's complement unscaled values, one row per line."""
    width = 16 if pa.types.is_decimal128(values.type) else 32
    raw = np.frombuffer(values.buffers()[1], dtype=np.uint8)
    raw = raw[values.offset * width:(values.offset + len(values)) * width].reshape(-1, width)
    return raw[:, ::-1].copy(), width


def key_part(values: pa.Array, t: DataType, last: bool) -> list[bytes]:
    """One rowkey part per row (see the module docs)."""
    k, n = t.kind, len(values)
    if t.is_integer or k in _WIDTH:
        width = _WIDTH[k]
        ints = _integers(values, t).astype(np.int64)
        flipped = (ints.astype(f"<i{width}").view(f"<u{width}")
                   ^ np.array(1 << (width * 8 - 1), dtype=f"<u{width}"))
        return _split_fixed(flipped.astype(f">u{width}").tobytes(), width, n)
    if k == "BOOLEAN":
        return [b"\x01" if v else b"\x00" for v in values.to_pylist()]
    if k in ("FLOAT", "DOUBLE"):
        width = 4 if k == "FLOAT" else 8
        bits = values.to_numpy(zero_copy_only=False).astype(f"<f{width}").view(f"<u{width}")
        sign = np.array(1 << (width * 8 - 1), dtype=f"<u{width}")
        flipped = np.where(bits & sign, ~bits, bits | sign).astype(f"<u{width}")
        return _split_fixed(flipped.astype(f">u{width}").tobytes(), width, n)
    if k == "DECIMAL":
        rows, width = _decimal_bytes(values)
        rows[:, 0] ^= 0x80
        return _split_fixed(rows.tobytes(), width, n)
    raw = values.cast(pa.binary()).to_pylist() if not t.is_binary else values.to_pylist()
    if last:
        return raw
    return [v.replace(b"\x00", b"\x00\xff") + b"\x00\x00" for v in raw]


def rowkeys(rows: pa.Table, schema: TableSchema) -> list[bytes]:
    """The rowkey of every row."""
    names = schema.primary_key
    parts = [key_part(rows.column(name).combine_chunks(), schema.column(name).type,
                      i == len(names) - 1)
             for i, name in enumerate(names)]
    if len(parts) == 1:
        return parts[0]
    return [b"".join(p) for p in zip(*parts)]


def _text(values: pa.Array, t: DataType) -> pa.Array:
    k = t.kind
    if k in ("TIMESTAMP", "TIMESTAMP_LTZ"):
        text = pc.strftime(values, format="%Y-%m-%dT%H:%M:%S")
        return pc.binary_join_element_wise(text, "Z", "") if k == "TIMESTAMP_LTZ" else text
    if k == "TIME":
        return pa.array(_integers(values, t)).cast(pa.string())
    if k == "ARRAY":
        return pa.array([None if v is None else json.dumps(v, default=str)
                         for v in values.to_pylist()], type=pa.string())
    return values.cast(pa.string())


def cell_values(values: pa.Array, t: DataType, encoding: str) -> list[bytes | None]:
    """The cell value of every row (None for NULL)."""
    k, n = t.kind, len(values)
    if t.is_binary:
        return values.to_pylist()
    if encoding == "binary":
        if k == "BOOLEAN":
            return [None if v is None else (b"\xff" if v else b"\x00") for v in values.to_pylist()]
        if t.is_integer or k in _WIDTH:
            width = _WIDTH[k]
            filled = pc.fill_null(values, 0) if values.null_count else values
            ints = _integers(filled, t).astype(f">i{width}")
            out: list[bytes | None] = _split_fixed(ints.tobytes(), width, n)
            return _with_nulls(out, values)
        if k in ("FLOAT", "DOUBLE"):
            width = 4 if k == "FLOAT" else 8
            filled = pc.fill_null(values, 0) if values.null_count else values
            floats = filled.to_numpy(zero_copy_only=False).astype(f">f{width}")
            return _with_nulls(_split_fixed(floats.tobytes(), width, n), values)
        if k == "DECIMAL":
            return [None if v is None else _big_decimal(v) for v in values.to_pylist()]
    text = _text(values, t).cast(pa.binary())
    return text.to_pylist()


def _with_nulls(out: list, values: pa.Array) -> list:
    if values.null_count:
        for i in np.flatnonzero(values.is_null().to_numpy(zero_copy_only=False)):
            out[i] = None
    return out


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
