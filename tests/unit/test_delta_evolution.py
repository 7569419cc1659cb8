"""A checkpoint's rows against a Delta table's columns (sinks/delta/evolution.py)."""
from __future__ import annotations

import pyarrow as pa
import pytest

pytest.importorskip("deltalake")

from runtime.errors import TerminalError  # noqa: E402
from sinks.delta.evolution import evolve  # noqa: E402

TABLE = pa.schema([("id", pa.int64()), ("name", pa.string()), ("qty", pa.int64())])


def test_rows_take_the_tables_columns_in_its_order_and_bring_new_ones_last():
    data = pa.table({"qty": pa.array([1], pa.int32()), "id": pa.array([7], pa.int64()),
                     "note": ["n"], "__op": ["c"]})
    evo = evolve(TABLE, data, "shop.t", "/lake/shop/t", extra=("__op",))
    assert evo.data.column_names == ["id", "name", "qty", "note", "__op"]
    assert evo.data.schema.field("qty").type == pa.int64()  # a narrowed column cast up
    assert evo.data.column("name").to_pylist() == [None]  # a dropped one: null
    assert evo.added == ["note"] and evo.widen == {}


def test_wider_types_are_reported_and_others_refused_in_one_line():
    data = pa.table({"id": pa.array([1], pa.decimal128(25, 0))})
    evo = evolve(pa.schema([("id", pa.int64())]), data, "t", "/x")
    assert evo.widen == {"id": pa.decimal128(25, 0)}
    with pytest.raises(TerminalError) as err:
        evolve(TABLE, pa.table({"name": pa.array([1], pa.int64())}), "shop.t", "/lake/shop/t")
    assert str(err.value).startswith("delta: table shop.t: column 'name' changed type from "
                                     "string to long, which the Delta table at /lake/shop/t")
