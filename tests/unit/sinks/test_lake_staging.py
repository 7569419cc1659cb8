"""The lake writers' staged data files (sinks.lake.staging), on local files without a table
format: what a file and its side record hold, rolling, read-back as changes, garbage at
restore, and the key checks the committers decide with."""
from __future__ import annotations

import os

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from runtime.batch import ChangeBatch
from runtime.schema import Column, TableSchema
from runtime.types import T
from sinks.lake.staging import (Layout, Stager, discard_except, forget, keys_overlap,
                                keys_repeat, read_keys, read_staged)

ORDERS = TableSchema("shop.orders", (Column("id", T("BIGINT"), False), Column("name", T("STRING")),
                                     Column("t", T("TIME(6)"))), ("id",))


class Plain(Layout):
    def __init__(self, root: str):
        self.root = root

    def stageable(self, schema: TableSchema) -> bool:
        return True

    def location(self, schema: TableSchema) -> str:
        return os.path.join(self.root, schema.table)

    def shape(self, rows: pa.Table, schema: TableSchema) -> pa.Table:
        return rows.set_column(2, "t", rows.column("t").cast(pa.int64()))  # as Delta does


def batch(ids, op="r", seq0=0) -> ChangeBatch:
    import datetime as dt

    rows = [(i, f"n{i}" if i % 3 else None, dt.timedelta(microseconds=i)) for i in ids]
    return ChangeBatch(ORDERS, op * len(rows), rows=rows,
                       versions=np.arange(seq0, seq0 + len(rows), dtype=np.int64))


def codes(b: ChangeBatch) -> np.ndarray:
    return np.frombuffer(b.ops.encode(), dtype=np.uint8)


def test_a_staged_file_holds_the_shaped_rows_and_its_side_record_keys_seq_and_ops(tmp_path):
    st = Stager(Plain(str(tmp_path / "lake")), str(tmp_path / "staging"), 1 << 30)
    b1, b2 = batch(range(10, 20)), batch(range(20, 25), "c", seq0=100)
    st.add(b1, codes(b1))
    st.add(b2, codes(b2))
    (f,) = st.finish()
    assert (f.rows, f.seq_min, f.seq_max, f.min, f.max) == (15, 0, 104, {"id": 10}, {"id": 24})
    assert f.nulls == {"id": 0, "name": 5, "t": 0} and f.size == os.path.getsize(f.path)
    data = pq.read_table(f.path)
    assert data.schema.field("t").type == pa.int64() and data.num_rows == 15
    schema, keys = read_keys([f])
    assert schema == ORDERS and keys.column("id").to_pylist() == list(range(10, 25))
    back = list(read_staged(f))
    assert "".join(b.ops for b in back) == "r" * 10 + "c" * 5
    assert pa.Table.from_batches([b.arrow() for b in back]).equals(
        pa.Table.from_batches([b1.arrow(), b2.arrow()]))  # the hub's types again
    assert np.concatenate([b.versions for b in back]).tolist() == list(range(10)) + list(
        range(100, 105))


def test_files_roll_at_the_target_size_and_a_schema_change_starts_a_new_one(tmp_path):
    st = Stager(Plain(str(tmp_path / "lake")), str(tmp_path / "staging"), 2048)
    for j in range(0, 2000, 100):
        b = batch(range(j, j + 100), seq0=j)
        st.add(b, codes(b))
    files = st.finish()
    assert len(files) > 2 and sum(f.rows for f in files) == 2000
    assert all(f.size < 3 * 2048 for f in files)


def test_forget_and_discard_never_touch_a_file_a_committable_names(tmp_path):
    staging = str(tmp_path / "staging")
    st = Stager(Plain(str(tmp_path / "lake")), staging, 1 << 30)
    b = batch(range(5))
    st.add(b, codes(b))
    (kept,) = st.finish()
    b = batch(range(5, 9))
    st.add(b, codes(b))
    (later,) = st.finish()
    b = batch(range(9, 12))
    st.add(b, codes(b))  # open, never finished: a crash left it
    left = st._open["shop.orders"].path
    assert sorted(discard_except(staging, [kept])) == sorted([later.path, left])
    assert os.path.exists(kept.path) and os.path.exists(kept.side)
    assert not os.path.exists(later.path) and not os.path.exists(later.side)
    forget([kept])
    assert os.path.exists(kept.path) and not os.path.exists(kept.side)
    assert os.listdir(staging) == []


def test_key_checks():
    t = pa.table({"id": pa.array([3, 1, 2], pa.int64())})
    assert not keys_repeat(t) and keys_repeat(pa.table({"id": [1, 2, 1]}))
    assert not keys_repeat(pa.table({"id": [1, 2, 3]}))
    both = pa.table({"a": [1, 1, 2], "b": ["x", "y", "x"]})
    assert not keys_repeat(both) and keys_repeat(pa.concat_tables([both, both.slice(1, 1)]))
    assert keys_overlap(t, pa.table({"id": pa.array([9, 2], pa.int32())}))
    assert not keys_overlap(t, pa.table({"id": [7]})) and not keys_overlap(t, t.slice(0, 0))
    assert keys_overlap(both, pa.table({"a": [1], "b": ["y"]}))
    assert not keys_overlap(both, pa.table({"a": [2], "b": ["y"]}))


def test_staged_values_cast_back_through_their_count_only_within_one_unit():
    """An Iceberg ``time`` (time64[us]) reads back as the hub's TIME (duration[us]) by its
    count of microseconds; a count of another unit is never taken as one (an error, not a
    value 1000 times off)."""
    import pytest

    from sinks.lake.staging import _cast_back

    us = pa.table({"t": pa.array([0, 86_399_999_999], pa.time64("us"))})
    back = _cast_back(us, pa.schema([("t", pa.duration("us"))]))
    assert back.column("t").cast(pa.int64()).to_pylist() == [0, 86_399_999_999]
    ns = pa.table({"t": pa.array([1_000], pa.time64("ns"))})
    with pytest.raises(pa.ArrowNotImplementedError):
        _cast_back(ns, pa.schema([("t", pa.duration("us"))]))
