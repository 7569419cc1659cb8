"""The delta sink's tables over time: schema evolution (added, dropped, narrowed, widened and
incompatible columns), partitions from ``partition-by``, and maintenance (compaction and
vacuum) that changes no row."""
from __future__ import annotations

import datetime as dt
import os
from decimal import Decimal

import pytest

pytest.importorskip("deltalake")
pytest.importorskip("polars")

from deltalake import DeltaTable  # noqa: E402

from runtime.batch import ChangeBatch  # noqa: E402
from runtime.errors import ConfigError, TerminalError  # noqa: E402
from tests.integration.delta.helpers import (Driver, checkpoint_commits, commits,  # noqa: E402
                                             data_files, read, schema)

pytestmark = [pytest.mark.integration, pytest.mark.delta]

V1 = schema("shop.orders", {"id": "BIGINT", "name": "STRING", "qty": "INT"})
V2 = schema("shop.orders", {"id": "BIGINT", "name": "STRING", "qty": "INT", "note": "STRING"})
V3 = schema("shop.orders", {"id": "BIGINT", "qty": "INT", "note": "STRING"})  # name dropped


def delta_types(uri: str) -> dict:
    return {f.name: str(f.type) for f in DeltaTable(uri).schema().fields}


@pytest.mark.parametrize("mode", ["upsert", "append", "upsert-split"])
def test_added_columns_appear_and_dropped_ones_stay_null(tmp_path, mode):
    # upsert-split: each checkpoint's new keys appended after a MERGE of the other changes
    split = mode == "upsert-split"
    mode = "upsert" if split else mode
    d = Driver(tmp_path, **{"write-mode": mode, "new-keys-append-threshold": int(split)})
    d.checkpoint(ChangeBatch(V1, "cc", rows=[(1, "a", 1), (2, "b", 2)]))
    d.checkpoint(ChangeBatch(V2, "uc", rows=[(1, "a", 10, "hi"), (3, "c", 3, None)]))
    # within one checkpoint: a row of the old schema, then the column is dropped
    d.checkpoint(ChangeBatch(V2, "c", rows=[(4, "d", 4, "x")]),
                 ChangeBatch(V3, "uc", rows=[(2, 20, "later"), (5, 5, "new")]))
    uri = d.uri("shop.orders")
    assert list(delta_types(uri)) == ["id", "name", "qty"] + (
        ["op", "ts_ms", "seq"] if mode == "append" else []) + ["note"]
    if mode == "upsert":
        assert read(uri) == {
            1: {"id": 1, "name": "a", "qty": 10, "note": "hi"},
            2: {"id": 2, "name": None, "qty": 20, "note": "later"},
            3: {"id": 3, "name": "c", "qty": 3, "note": None},
            4: {"id": 4, "name": "d", "qty": 4, "note": "x"},
            5: {"id": 5, "name": None, "qty": 5, "note": "new"}}
    else:
        rows = DeltaTable(uri).to_pyarrow_table().sort_by("seq").to_pylist()
        assert [(r["id"], r["name"], r["note"]) for r in rows] == [
            (1, "a", None), (2, "b", None), (1, "a", "hi"), (3, "c", None), (4, "d", "x"),
            (2, None, "later"), (5, None, "new")]
    # columns came with the data, no extra commit
    assert checkpoint_commits(uri) == ([1, 2, 2, 3, 3] if split else [1, 2, 3])


def test_a_narrowed_column_is_cast_up_and_a_widened_one_rewrites_the_table(tmp_path):
    d = Driver(tmp_path)
    wide = schema("shop.t", {"id": "BIGINT", "n": "BIGINT", "p": "DECIMAL(10,2)",
                             "f": "FLOAT"})
    d.checkpoint(ChangeBatch(wide, "cc", rows=[(1, 2**40, Decimal("1.25"), 1.5),
                                               (2, 1, Decimal("2.50"), 2.5)]))
    narrow = schema("shop.t", {"id": "BIGINT", "n": "INT", "p": "DECIMAL(10,2)", "f": "FLOAT"})
    d.checkpoint(ChangeBatch(narrow, "u", rows=[(2, 7, Decimal("2.75"), 3.5)]))
    uri = d.uri("shop.t")
    assert delta_types(uri)["n"] == 'PrimitiveType("long")'

    wider = schema("shop.t", {"id": "BIGINT", "n": "BIGINT", "p": "DECIMAL(14,4)",
                              "f": "DOUBLE"})
    d.checkpoint(ChangeBatch(wider, "c", rows=[(3, 3, Decimal("12345678.1234"), 0.1)]))
    types = delta_types(uri)
    assert types["p"] == 'PrimitiveType("decimal(14,4)")'
    assert types["f"] == 'PrimitiveType("double")'
    assert read(uri) == {1: {"id": 1, "n": 2**40, "p": Decimal("1.2500"), "f": 1.5},
                         2: {"id": 2, "n": 7, "p": Decimal("2.7500"), "f": 3.5},
                         3: {"id": 3, "n": 3, "p": Decimal("12345678.1234"), "f": 0.1}}
    assert checkpoint_commits(uri) == [1, 2, 3]
    assert [c.get("hub.maintenance") for c in commits(uri)] == [
        None, None, "widened f, p", None]


def test_a_type_change_delta_cannot_take_stops_with_one_line(tmp_path):
    d = Driver(tmp_path)
    d.checkpoint(ChangeBatch(V1, "c", rows=[(1, "a", 1)]))
    text = schema("shop.orders", {"id": "BIGINT", "name": "STRING", "qty": "STRING"})
    with pytest.raises(TerminalError) as err:
        d.checkpoint(ChangeBatch(text, "c", rows=[(2, "b", "two")]))
    line = str(err.value)
    assert "\n" not in line
    assert ("table shop.orders: column 'qty' changed type from integer to string" in line
            and "--fresh" in line)
    assert read(d.uri("shop.orders")) == {1: {"id": 1, "name": "a", "qty": 1}}


EVENTS = schema("shop.events", {"id": "BIGINT", "region": "STRING", "at": "TIMESTAMP(6)",
                                "sku": "STRING"})


def test_partitions_by_columns_and_day_of_a_timestamp(tmp_path):
    d = Driver(tmp_path, **{"partition-by": ["region", "day(at)", "truncate(2, sku)"]})
    at = dt.datetime(2026, 11, 24, 9, 30)
    d.checkpoint(ChangeBatch(EVENTS, "ccc", rows=[(1, "eu", at, "abc"), (2, "us", at, "xyz"),
                                                  (3, "eu", at + dt.timedelta(days=1), "abd")]))
    # an update moving a row to another partition, a delete
    d.checkpoint(ChangeBatch(EVENTS, "ud", rows=[(1, "us", at, "abc"), (2, "us", at, "xyz")]))
    uri = d.uri("shop.events")
    assert DeltaTable(uri).metadata().partition_columns == ["region", "at_day", "sku_trunc"]
    assert read(uri) == {
        1: {"id": 1, "region": "us", "at": at, "sku": "abc", "at_day": dt.date(2026, 11, 24),
            "sku_trunc": "ab"},
        3: {"id": 3, "region": "eu", "at": at + dt.timedelta(days=1), "sku": "abd",
            "at_day": dt.date(2026, 11, 25), "sku_trunc": "ab"}}
    assert os.path.isdir(os.path.join(uri, "region=us", "at_day=2026-11-24", "sku_trunc=ab"))
    import polars as pl

    pruned = pl.scan_delta(uri).filter(pl.col("at_day") == dt.date(2026, 11, 25)).collect()
    assert pruned["id"].to_list() == [3]
    # the table keeps its layout: another partition-by is refused, naming both
    other = Driver(tmp_path, job="job-2", **{"partition-by": ["region"]})
    with pytest.raises(TerminalError, match=r"partitioned by \['region', 'at_day', "
                                            r"'sku_trunc'\], but partition-by gives"):
        other.checkpoint(ChangeBatch(EVENTS, "c", rows=[(9, "eu", at, "q")]))


def test_bucket_partitions_are_refused_before_anything_runs(tmp_path):
    with pytest.raises(ConfigError, match="no bucket partitions"):
        Driver(tmp_path, **{"partition-by": ["bucket(8, id)"]})


#: The log kept (maintenance would clean it up to its checkpoint): its commits are looked at.
KEEP_LOG = {"delta.logRetentionDuration": "interval 1 days"}


def test_maintenance_compacts_small_files_and_vacuums_without_changing_a_row(tmp_path):
    d = Driver(tmp_path, **{"write-mode": "append", "retention": "0s",
                            "maintenance-interval": "1h", "table-properties": KEEP_LOG})
    for i in range(6):
        d.checkpoint(ChangeBatch(V1, "cc", rows=[(2 * i, "a", i), (2 * i + 1, "b", i)]))
    uri = d.uri("shop.orders")
    before = read(uri)
    assert len(data_files(uri)) == 6
    d.committer.maintain(["shop.orders"], d.context())
    assert read(uri) == before
    assert len(data_files(uri)) == 1  # compacted, and the small files vacuumed
    assert DeltaTable(uri).transaction_version(f"hub:it:delta:{d.job}") == 6
    assert [c["operation"] for c in commits(uri)][6:] == ["OPTIMIZE", "VACUUM START",
                                                          "VACUUM END"]
    assert commits(uri)[6]["hub.maintenance"] == "compact"
    d.checkpoint(ChangeBatch(V1, "c", rows=[(99, "z", 9)]))  # and commits go on as before
    assert len(read(uri)) == 13 and checkpoint_commits(uri) == [1, 2, 3, 4, 5, 6, 7]


def test_maintenance_runs_on_its_interval_from_commits(tmp_path):
    d = Driver(tmp_path, **{"write-mode": "append", "retention": "0s",
                            "maintenance-interval": "1ms", "table-properties": KEEP_LOG})
    for i in range(3):
        d.checkpoint(ChangeBatch(V1, "c", rows=[(i, "a", i)]))
    uri = d.uri("shop.orders")
    assert len(data_files(uri)) == 1
    assert "compact" in [c.get("hub.maintenance") for c in commits(uri)]


def test_widening_a_partitioned_table_keeps_its_partitions(tmp_path):
    d = Driver(tmp_path, **{"partition-by": ["region"]})
    v1 = schema("shop.p", {"id": "INT", "region": "STRING", "n": "INT"})
    d.checkpoint(ChangeBatch(v1, "cc", rows=[(1, "eu", 1), (2, "us", 2)]))
    v2 = schema("shop.p", {"id": "BIGINT", "region": "STRING", "n": "BIGINT"})
    d.checkpoint(ChangeBatch(v2, "uc", rows=[(1, "eu", 2**40), (2**40, "us", 3)]))
    uri = d.uri("shop.p")
    assert DeltaTable(uri).metadata().partition_columns == ["region"]
    assert read(uri) == {1: {"id": 1, "region": "eu", "n": 2**40},
                         2: {"id": 2, "region": "us", "n": 2},
                         2**40: {"id": 2**40, "region": "us", "n": 3}}
