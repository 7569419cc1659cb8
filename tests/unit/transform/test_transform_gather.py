"""Keeping a filter's rows (runtime.transform.gather): the numpy gather of fixed-width columns
gives what Arrow's filter gives, for every fixed-width type, sliced arrays and NULLs (which go
through Arrow); and the operator's output through it is Arrow's filter of its input."""
from __future__ import annotations

import datetime as dt
from decimal import Decimal

import numpy as np
import pyarrow as pa
import pytest

from runtime.batch import ChangeBatch
from runtime.schema import Column, TableSchema
from runtime.transform.gather import fixed_dtype, mask_indices, take, take_values
from runtime.transform.transform import TransformRule, Transformer
from runtime.types import T

MASK = [True, False, True, True, False, True, False, True, True]

COLUMNS = {
    "int8": pa.array([1, -2, 3, 4, 5, 6, 7, -8, 9], pa.int8()),
    "int16": pa.array(range(-4, 5), pa.int16()),
    "int32": pa.array(range(100, 109), pa.int32()),
    "int64": pa.array([2**62, -1, 0, 5, 6, 7, 8, 9, -(2**63)], pa.int64()),
    "uint64": pa.array([2**64 - 1, 1, 2, 3, 4, 5, 6, 7, 8], pa.uint64()),
    "float32": pa.array([0.5, 1.5, -2.5, 3, 4, 5, 6, 7, 8], pa.float32()),
    "float64": pa.array([0.1, 1e300, -2.5, 3, 4, 5, 6, 7, float("inf")], pa.float64()),
    "decimal128": pa.array([Decimal("12345678901234567890.12"), Decimal("-1.50")]
                           + [Decimal(i) for i in range(7)], pa.decimal128(24, 2)),
    "decimal256": pa.array([Decimal("-" + "1" * 40)] + [Decimal(i) for i in range(8)],
                           pa.decimal256(45, 0)),
    "date32": pa.array([dt.date(2026, 1, d) for d in range(1, 10)], pa.date32()),
    "timestamp": pa.array([dt.datetime(2026, 1, d, 1, 2, 3) for d in range(1, 10)],
                          pa.timestamp("us", tz="UTC")),
    "time64": pa.array([dt.time(1, 2, s) for s in range(9)], pa.time64("us")),
    "duration": pa.array(range(9), pa.duration("ms")),
    "fixed_binary": pa.array([bytes([i]) * 3 for i in range(9)], pa.binary(3)),
    # not fixed width or not whole bytes: Arrow's filter
    "string": pa.array(["a", "bb", None, "dddd", "", "f", "g", "h", "i"]),
    "bool": pa.array([True, False, None, True, False, True, True, False, True]),
    "list": pa.array([[1], [], None, [2, 3], [4], [5], [6], [7], [8]]),
}


@pytest.mark.parametrize("name", list(COLUMNS))
@pytest.mark.parametrize("sliced", [False, True], ids=["whole", "sliced"])
@pytest.mark.parametrize("nulls", [False, True], ids=["no-nulls", "nulls"])
def test_take_is_arrows_filter(name: str, sliced: bool, nulls: bool) -> None:
    a = COLUMNS[name]
    if nulls:  # a NULL where the mask keeps the row and one where it drops it
        values = a.to_pylist()
        values[2] = values[4] = None
        a = pa.array(values, a.type)
    mask = pa.array(MASK)
    if sliced:  # offsets of both the column and the mask
        a = pa.concat_arrays([a.slice(0, 3), a]).slice(3)
        mask = pa.concat_arrays([pa.array([False] * 5), mask]).slice(5)
    idx = mask_indices(mask)
    assert idx.tolist() == [i for i, keep in enumerate(MASK) if keep]
    got = take(a, fixed_dtype(a.type), idx, mask)
    assert got.type == a.type
    assert got.equals(a.filter(mask)), name
    got.validate(full=True)
    assert take(a, fixed_dtype(a.type), idx).equals(a.filter(mask))  # without the mask


def test_fixed_dtype_only_for_whole_byte_fixed_width() -> None:
    assert fixed_dtype(pa.int64()) == np.dtype(np.int64)
    assert fixed_dtype(pa.decimal128(12, 2)) == np.dtype("V16")
    assert fixed_dtype(pa.timestamp("ms")) == np.dtype(np.int64)
    newer = [make() for make in (getattr(pa, "uuid", None), getattr(pa, "string_view", None))
             if make is not None]  # pyarrow 18 and 16
    for t in (pa.bool_(), pa.string(), pa.large_string(), pa.binary(), pa.list_(pa.int64()),
              pa.dictionary(pa.int32(), pa.string()), pa.struct([("a", pa.int64())]),
              pa.run_end_encoded(pa.int32(), pa.int64()), *newer):
        assert fixed_dtype(t) is None, t


def test_take_values_keeps_the_kind() -> None:
    idx = np.array([0, 2])
    got = take_values(np.array([5, 6, 7], dtype=np.int64), idx)
    assert isinstance(got, np.ndarray) and got.tolist() == [5, 7]
    got = take_values(pa.array([5, 6, 7], pa.int64()), idx)
    assert isinstance(got, pa.Array) and got.to_pylist() == [5, 7]
    assert take_values(pa.chunked_array([[5], [6, 7]]), idx).to_pylist() == [5, 7]
    assert take_values([5, 6, 7], idx).tolist() == [5, 7]


SCHEMA = TableSchema("shop.orders", (
    Column("id", T("BIGINT"), False), Column("qty", T("INT")), Column("price", T("DECIMAL(12,2)")),
    Column("name", T("STRING")), Column("at", T("TIMESTAMP(6)"))), ("id",))


@pytest.mark.parametrize("sliced", [False, True], ids=["whole", "sliced"])
def test_operator_output_is_arrows_filter_of_its_input(sliced: bool) -> None:
    """Through the filter-first path (inserts only, a filter on source columns): every kept
    column, the event times and versions are Arrow's filter of the input's."""
    n = 50
    rng = np.random.default_rng(7)
    qty = [None if i % 7 == 3 else int(v) for i, v in enumerate(rng.integers(0, 10, n))]
    rb = pa.RecordBatch.from_arrays([
        pa.array(np.arange(n, dtype=np.int64)), pa.array(qty, pa.int32()),
        pa.array([Decimal(int(v)) / 100 for v in rng.integers(0, 10_000, n)],
                 pa.decimal128(12, 2)),
        pa.array([None if i % 5 == 0 else f"n{i}" for i in range(n)]),
        pa.array(np.arange(n, dtype=np.int64) * 1000, pa.timestamp("us"))],
        schema=SCHEMA.arrow_schema)
    ts = np.arange(n, dtype=np.int64) + 1_700_000_000_000
    versions = np.arange(n, dtype=np.int64) * 3
    if sliced:
        rb, ts, versions = rb.slice(5), ts[5:], versions[5:]
    batch = ChangeBatch(SCHEMA, "c" * rb.num_rows, arrow=rb, ts_ms=ts, versions=versions)
    rule = TransformRule("shop\\.orders", "id, qty, price, name, at, price * 2 AS p2",
                         "price > 30 AND (qty IS NULL OR qty <> 4)")
    out = Transformer([rule]).apply(batch)
    assert out is not None
    price = rb.column("price").to_pylist()
    keep = [p > 30 and (q is None or q != 4) for p, q in zip(price, rb.column("qty").to_pylist())]
    assert 0 < sum(keep) < rb.num_rows
    mask = pa.array(keep)
    want = rb.filter(mask)
    got = out.arrow()
    for name in ("id", "qty", "price", "name", "at"):
        assert got.column(name).equals(want.column(name)), name
    assert got.column("p2").to_pylist() == [p * 2 for p in want.column("price").to_pylist()]
    assert out.ts_ms_list() == pa.array(ts).filter(mask).to_pylist()
    assert list(out.versions) == pa.array(versions).filter(mask).to_pylist()
    assert out.ops == "c" * sum(keep)
