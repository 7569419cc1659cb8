"""Avro binary encoding of Arrow columns, vectorised (numpy and Arrow kernels, no Python per
value): each function returns one ``binary`` value per row, the row's datum, and records are
the element-wise concatenation of their fields' data.

The types are those of :func:`formats.codec.avro.row_record`: ``int``/``long`` (zig-zag varints: the
integers, DATE as days, TIME and timestamps as microseconds), ``float``/``double``
(little-endian IEEE 754), ``boolean``, ``bytes`` (BYTES, DECIMAL as its unscaled two's
complement), ``string`` (CHAR, VARCHAR, STRING, JSON), ``array`` of ``["null", T]``, and
``["null", T]`` unions for nullable columns (branch 0 null, 1 the value).
"""
from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from runtime.types import DataType

EMPTY = pa.scalar(b"", pa.binary())
NULL_BRANCH = pa.scalar(b"\x00", pa.binary())  # union branch 0, and an empty array's end
VALUE_BRANCH = pa.scalar(b"\x02", pa.binary())  # union branch 1 (zig-zag of 1)
_SHIFTS = np.arange(10, dtype=np.uint64) * np.uint64(7)
_LIMITS = np.uint64(1) << (np.arange(1, 10, dtype=np.uint64) * np.uint64(7))


def _binary(lengths: np.ndarray, data: np.ndarray) -> pa.Array:
    offsets = np.zeros(len(lengths) + 1, np.int32)
    np.cumsum(lengths, out=offsets[1:])
    return pa.BinaryArray.from_buffers(pa.binary(), len(lengths),
                                       [None, pa.py_buffer(offsets), pa.py_buffer(data)])


def varints(values: np.ndarray) -> pa.Array:
    """Zig-zag varints of int64 values (Avro ``int`` and ``long``)."""
    v = values.astype(np.int64, copy=False)
    z = ((v << 1) ^ (v >> 63)).view(np.uint64)
    lengths = 1 + (z[:, None] >= _LIMITS[None, :]).sum(axis=1)
    groups = ((z[:, None] >> _SHIFTS[None, :]) & np.uint64(0x7F)).astype(np.uint8)
    more = np.arange(10)[None, :] < (lengths - 1)[:, None]
    groups |= np.where(more, np.uint8(0x80), np.uint8(0))
    return _binary(lengths, groups[np.arange(10)[None, :] < lengths[:, None]])


def _fixed(data: np.ndarray, width: int) -> pa.Array:
    return _binary(np.full(len(data) // width if width else 0, width), data)


def _length_prefixed(arr: pa.Array) -> pa.Array:
    """``bytes``/``string``: the length as a long, then the bytes."""
    lengths = pc.binary_length(arr).fill_null(0).to_numpy(zero_copy_only=False)
    data = arr.cast(pa.binary()).fill_null(b"")
    return pc.binary_join_element_wise(varints(lengths), data, EMPTY)


def _decimal_bytes(arr: pa.Array) -> pa.Array:
    """The unscaled values, big-endian two's complement, shortest form (Arrow keeps them
    little-endian in 16 or 32 bytes)."""
    width = arr.type.byte_width
    n = len(arr)
    raw = np.frombuffer(arr.buffers()[1], np.uint8, n * width,
                        arr.offset * width).reshape(n, width)[:, ::-1]
    negative = raw[:, 0] >= 0x80
    sign = np.where(negative, 0xFF, 0x00).astype(np.uint8)
    # a leading byte is redundant when it is all sign bits and the next one has the same sign
    redundant = (raw[:, :-1] == sign[:, None]) & ((raw[:, 1:] >= 0x80) == negative[:, None])
    start = np.where(redundant.all(axis=1), width - 1, np.argmin(redundant, axis=1))
    keep = np.arange(width)[None, :] >= start[:, None]
    return _binary(width - start, raw[keep])


def _numbers(arr: pa.Array, target: pa.DataType) -> np.ndarray:
    return arr.cast(target).fill_null(0).to_numpy(zero_copy_only=False)


def datum(arr: pa.Array, dtype: DataType) -> pa.Array:
    """The Avro datum of each (non-null) value of ``arr``, a column of logical type ``dtype``
    (null slots hold some datum: wrap with :func:`nullable`)."""
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    t, k = arr.type, dtype.kind
    if k == "BOOLEAN":
        return _fixed(_numbers(arr, pa.uint8()), 1)
    if k == "FLOAT":
        return _fixed(_numbers(arr, pa.float32()).astype("<f4").view(np.uint8), 4)
    if k == "DOUBLE":
        return _fixed(_numbers(arr, pa.float64()).astype("<f8").view(np.uint8), 8)
    if k == "DECIMAL":
        encoded = _decimal_bytes(arr)
        return pc.binary_join_element_wise(
            varints(pc.binary_length(encoded).to_numpy(zero_copy_only=False)), encoded, EMPTY)
    if pa.types.is_duration(t):
        return varints(_numbers(pc.cast(arr, pa.duration("us"), safe=False), pa.int64()))
    if pa.types.is_timestamp(t):
        us = pc.cast(arr, pa.timestamp("us", t.tz), safe=False)
        return varints(_numbers(us, pa.int64()))
    if pa.types.is_date(t):
        return varints(_numbers(arr.cast(pa.date32()), pa.int32()))
    if pa.types.is_integer(t):
        return varints(_numbers(arr, pa.int64()))
    if k == "ARRAY":
        assert dtype.element is not None
        return _array(arr, dtype.element)
    if pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_binary(t) \
            or pa.types.is_large_binary(t) or pa.types.is_fixed_size_binary(t):
        return _length_prefixed(arr)
    raise ValueError(f"no Avro encoding for {dtype} ({t})")


def nullable(arr: pa.Array, data: pa.Array) -> pa.Array:
    """``["null", T]`` union data: branch 0 for nulls, branch 1 and the datum otherwise."""
    tagged = pc.binary_join_element_wise(VALUE_BRANCH, data, EMPTY)
    return pc.if_else(arr.is_valid(), tagged, NULL_BRANCH) if arr.null_count else tagged


def _array(arr: pa.Array, element: DataType) -> pa.Array:
    """An ``array`` of ``["null", T]``: one block (count, items) and the 0 that ends it; an
    empty (or null: wrapped by the caller) list is just the 0."""
    counts = pc.list_value_length(arr).fill_null(0).to_numpy(zero_copy_only=False)
    flat = pc.list_flatten(arr)
    items = nullable(flat, datum(flat, element))
    offsets = np.zeros(len(counts) + 1, np.int32)
    np.cumsum(counts, out=offsets[1:])
    joined = pc.binary_join(pa.ListArray.from_arrays(pa.array(offsets), items), EMPTY)
    block = pc.binary_join_element_wise(varints(counts), joined, NULL_BRANCH, EMPTY)
    return pc.if_else(pa.array(counts > 0), block, NULL_BRANCH)


def record(columns: list[pa.Array], types: list[DataType], nullables: list[bool],
           rows: int) -> pa.Array:
    """The data of records of these fields (a record is its fields' data in order)."""
    if not columns:
        return pa.array([b""] * rows, pa.binary())
    parts = [nullable(c, datum(c, t)) if n else datum(c, t)
             for c, t, n in zip(columns, types, nullables)]
    return parts[0] if len(parts) == 1 else pc.binary_join_element_wise(*parts, EMPTY)
