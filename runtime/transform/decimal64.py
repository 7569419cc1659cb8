"""Fast paths for the commonest decimal work of filters and projections: a column of at most
18 digits compared with, or multiplied by, a literal.

Arrow's decimal kernels work on 128-bit values (a decimal multiply costs ~3x an int64 one, a
comparison with a literal of another scale first rescales the whole column).  A DECIMAL(p, s)
with ``p <= 18`` holds only values that fit an int64, so the low 64-bit word of each 128-bit
value *is* the unscaled value (two's complement, little-endian): numpy computes on a strided
view of those words, with no copy of the input.  Each fast path answers exactly what the
Arrow kernel answers (NULL where the column is NULL; the same result type); where its
conditions do not hold (a wider column, a literal that does not fit the column's scale
exactly, a sliced column with NULLs) it returns None and the caller uses the Arrow kernel.
"""
from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from functools import lru_cache

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

#: the most digits whose values all fit an int64
MAX_DIGITS = 18

_NP_COMPARE: dict[str, Callable[[np.ndarray, int], np.ndarray]] = {
    "greater": np.greater, "greater_equal": np.greater_equal, "less": np.less,
    "less_equal": np.less_equal, "equal": np.equal, "not_equal": np.not_equal}
#: ``literal <op> column`` is ``column <mirror op> literal``
_MIRROR = {"greater": "less", "greater_equal": "less_equal", "less": "greater",
           "less_equal": "greater_equal", "equal": "equal", "not_equal": "not_equal"}


def _narrow_column(v: object) -> bool:
    return (isinstance(v, pa.Array) and pa.types.is_decimal128(v.type)
            and v.type.precision <= MAX_DIGITS and (v.offset == 0 or not v.null_count)
            and v.buffers()[1] is not None)


def _words(a: pa.Array) -> np.ndarray:
    """The unscaled values of a decimal128 array of <= 18 digits (a view, no copy)."""
    words = np.frombuffer(a.buffers()[1], dtype=np.int64)
    return words[2 * a.offset:2 * (a.offset + len(a)):2]


def _validity(a: pa.Array) -> pa.Buffer | None:
    # only called with offset 0 or no NULLs (see _narrow_column)
    return a.buffers()[0] if a.null_count else None


@lru_cache(maxsize=1024)
def _unscaled(s: pa.Scalar, scale: int) -> int | None:
    """The literal as an integer at ``scale``; None when it is not exact there (``100.005`` at
    scale 2), NULL, not a number, or outside int64.  (Cached: a literal is the same scalar in
    every batch.)"""
    if not s.is_valid or not (pa.types.is_decimal(s.type) or pa.types.is_integer(s.type)):
        return None
    v = Decimal(s.as_py()).scaleb(scale)
    if v != v.to_integral_value():
        return None
    n = int(v)
    return n if -(2**63) <= n < 2**63 else None


def compare(name: str, a: object, b: object) -> pa.Array | None:
    """``a <name> b`` (``greater`` ...) for a narrow decimal column and a number literal, in
    either order; None: not this case (use the Arrow kernel)."""
    if isinstance(a, pa.Scalar) and _narrow_column(b):
        a, b, name = b, a, _MIRROR[name]
    if not (_narrow_column(a) and isinstance(b, pa.Scalar)):
        return None
    lit = _unscaled(b, a.type.scale)
    if lit is None:
        return None
    bits = _NP_COMPARE[name](_words(a), lit)
    data = pa.py_buffer(np.packbits(bits, bitorder="little"))
    return pa.Array.from_buffers(pa.bool_(), len(a), [_validity(a), data], a.null_count)


@lru_cache(maxsize=256)
def _product_type(p1: int, s1: int, p2: int, s2: int) -> pa.DataType:
    # Arrow's own result type (its rule: precision p1 + p2 + 1, scale s1 + s2), asked once
    # (keyed by numbers: hashing DataTypes costs more than the rest of a small batch's work)
    return pc.multiply(pa.array([], pa.decimal128(p1, s1)),
                       pa.array([], pa.decimal128(p2, s2))).type


def multiply(a: object, b: object) -> pa.Array | None:
    """``a * b`` for a narrow decimal column and an integer or decimal literal (either order)
    whose product type still has <= 18 digits (so no product can overflow an int64); None:
    not this case."""
    if isinstance(a, pa.Scalar) and _narrow_column(b):
        a, b = b, a
    if not (_narrow_column(a) and isinstance(b, pa.Scalar) and b.is_valid
            and pa.types.is_decimal128(b.type)):
        return None
    ta, tb = a.type, b.type
    out_type = _product_type(ta.precision, ta.scale, tb.precision, tb.scale)
    if not pa.types.is_decimal128(out_type) or out_type.precision > MAX_DIGITS:
        return None
    lit = _unscaled(b, b.type.scale)
    if lit is None:
        return None
    product = _words(a) * np.int64(lit)
    out = np.empty(2 * len(a), dtype=np.int64)
    out[0::2] = product
    out[1::2] = product >> 63  # the high word: the sign extended
    return pa.Array.from_buffers(out_type, len(a), [_validity(a), pa.py_buffer(out)],
                                 a.null_count)
