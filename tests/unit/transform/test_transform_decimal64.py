"""The int64 fast paths of decimal comparisons and products give what Arrow's kernels give."""
from __future__ import annotations

from decimal import Decimal

import pyarrow as pa
import pyarrow.compute as pc
import pytest

from runtime.transform import decimal64

VALUES = [Decimal("123.45"), None, Decimal("-0.01"), Decimal("100.00"), Decimal("9999999999.99"),
          Decimal("-9999999999.99"), Decimal("0"), None, Decimal("100.01")]
COL = pa.array(VALUES, pa.decimal128(12, 2))
OPS = ["greater", "greater_equal", "less", "less_equal", "equal", "not_equal"]


@pytest.mark.parametrize("col", [COL, COL.slice(1, 6), COL.slice(2, 5)], ids=["whole", "a slice",
                                                                           "a slice no nulls"])
@pytest.mark.parametrize("lit", [pa.scalar(100, pa.decimal128(3, 0)),
                                 pa.scalar(Decimal("100.0"), pa.decimal128(4, 1)),
                                 pa.scalar(Decimal("-0.01"), pa.decimal128(12, 2)),
                                 pa.scalar(7, pa.int64())])
@pytest.mark.parametrize("op", OPS)
def test_compare_is_arrows(col: pa.Array, lit: pa.Scalar, op: str) -> None:
    got = decimal64.compare(op, col, lit)
    if col.offset and col.null_count:
        assert got is None  # a sliced column with NULLs: Arrow's kernel
        return
    assert got is not None
    assert got.equals(getattr(pc, op)(col, lit)), (op, lit)
    mirrored = decimal64.compare(op, lit, col)  # literal first
    assert mirrored is not None and mirrored.equals(getattr(pc, op)(lit, col))


def test_compare_falls_back_where_it_would_not_be_exact() -> None:
    # a literal with more decimals than the column, a wide column, a NULL literal
    assert decimal64.compare("greater", COL, pa.scalar(Decimal("100.005"),
                                                       pa.decimal128(6, 3))) is None
    wide = pa.array([Decimal("1.5")], pa.decimal128(30, 2))
    assert decimal64.compare("greater", wide, pa.scalar(1, pa.decimal128(1, 0))) is None
    assert decimal64.compare("greater", COL, pa.scalar(None, pa.decimal128(3, 0))) is None


@pytest.mark.parametrize("col", [COL, COL.slice(2, 5)])
@pytest.mark.parametrize("lit", [pa.scalar(100, pa.decimal128(3, 0)),
                                 pa.scalar(Decimal("-2.5"), pa.decimal128(2, 1))])
def test_multiply_is_arrows(col: pa.Array, lit: pa.Scalar) -> None:
    got = decimal64.multiply(col, lit)
    want = pc.multiply(col, lit)
    assert got is not None and got.type == want.type and got.equals(want)
    assert decimal64.multiply(lit, col).equals(pc.multiply(lit, col))


def test_multiply_falls_back_when_the_product_may_not_fit_an_int64() -> None:
    # DECIMAL(12,2) * DECIMAL(6,0) is DECIMAL(19,2): more than 18 digits
    assert decimal64.multiply(COL, pa.scalar(123456, pa.decimal128(6, 0))) is None
    assert decimal64.multiply(COL, COL) is None  # two columns: Arrow's kernel


def test_the_expression_path_uses_it_and_agrees() -> None:
    from runtime.transform.expr import Env, compile_expr, parse

    from runtime.transform.functions import FAST_PATH_MIN_ROWS

    # products take the fast path from FAST_PATH_MIN_ROWS rows on (test_transform_fast_paths)
    col = pa.concat_arrays([COL] * (FAST_PATH_MIN_ROWS // len(COL) + 1))
    env = Env(len(col), {"amount": col})
    for sql, want in [("amount > 100", pc.greater(col, pa.scalar(100, pa.decimal128(3, 0)))),
                      ("amount * 100", pc.multiply(col, pa.scalar(100, pa.decimal128(3, 0))))]:
        assert compile_expr(parse(sql)).evaluate(env).equals(want)


def test_empty_and_all_null_columns() -> None:
    lit = pa.scalar(100, pa.decimal128(3, 0))
    for col in (pa.array([], pa.decimal128(12, 2)), pa.nulls(3, pa.decimal128(12, 2))):
        for fn, kernel in ((lambda a: decimal64.compare("greater", a, lit), pc.greater),
                           (lambda a: decimal64.multiply(a, lit), pc.multiply)):
            got = fn(col)
            assert got is None or got.equals(kernel(col, lit))
