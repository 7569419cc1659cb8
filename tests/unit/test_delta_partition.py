"""Delta partitions from ``partition-by`` (sinks/delta/partition.py) and the table paths of
the delta sink's config."""
from __future__ import annotations

import datetime as dt

import pyarrow as pa
import pytest

pytest.importorskip("deltalake")

from runtime.errors import ConfigError, TerminalError  # noqa: E402
from sinks.delta.config import DeltaSinkConfig  # noqa: E402
from sinks.delta.partition import (add_partition_columns, check_fields,  # noqa: E402
                                   partition_columns)
from sinks.lake.partition import parse_partition_by  # noqa: E402

ROWS = pa.table({
    "id": pa.array([-7, -1, 0, 9, 10, None], pa.int64()),
    "sku": ["abcdef", "ab", "äöüß-x", "", None, "xyz"],
    "at": pa.array([dt.datetime(2026, 11, 24, 9, 30), dt.datetime(2026, 1, 1, 0, 0),
                    dt.datetime(1969, 12, 31, 23, 59, 59), None,
                    dt.datetime(2026, 11, 24, 23, 0), dt.datetime(2000, 2, 29, 12)],
                   pa.timestamp("us")),
    "ltz": pa.array([dt.datetime(2026, 11, 24, 23, 30, tzinfo=dt.timezone.utc)] * 6,
                    pa.timestamp("us", tz="UTC")),
    "d": pa.array([dt.date(2026, 3, 9)] * 6, pa.date32()),
})


def derive(*items: str) -> pa.Table:
    return add_partition_columns(ROWS, parse_partition_by(list(items)), "shop.t")


def test_time_transforms_become_derived_columns():
    out = derive("year(at)", "month(at)", "day(at)", "hour(at)")
    assert out.column_names[-4:] == ["at_year", "at_month", "at_day", "at_hour"]
    assert out.column("at_year").to_pylist() == [2026, 2026, 1969, None, 2026, 2000]
    assert out.column("at_month").to_pylist() == ["2026-11", "2026-01", "1969-12", None,
                                                  "2026-11", "2000-02"]
    assert out.column("at_day").to_pylist() == [dt.date(2026, 11, 24), dt.date(2026, 1, 1),
                                                dt.date(1969, 12, 31), None,
                                                dt.date(2026, 11, 24), dt.date(2000, 2, 29)]
    assert out.column("at_hour").to_pylist() == ["2026-11-24-09", "2026-01-01-00",
                                                 "1969-12-31-23", None, "2026-11-24-23",
                                                 "2000-02-29-12"]
    assert out.select(ROWS.column_names).equals(ROWS)


def test_instants_are_cut_in_utc_and_dates_take_year_month_day():
    out = derive("day(ltz)", "hour(ltz)", "day(d)", "month(d)", "year(d)")
    assert out.column("ltz_day")[0].as_py() == dt.date(2026, 11, 24)
    assert out.column("ltz_hour")[0].as_py() == "2026-11-24-23"
    assert out.column("d_day")[0].as_py() == dt.date(2026, 3, 9)
    assert out.column("d_month")[0].as_py() == "2026-03"
    assert out.column("d_year")[0].as_py() == 2026


def test_truncate_floors_integers_and_cuts_strings_like_iceberg():
    out = derive("truncate(10, id)", "truncate(3, sku)")
    assert out.column("id_trunc").to_pylist() == [-10, -10, 0, 0, 10, None]
    assert out.column("sku_trunc").to_pylist() == ["abc", "ab", "äöü", "", None, "xyz"]


def test_identity_adds_nothing_and_names_the_partition_columns():
    fields = parse_partition_by(["sku", "day(at)", "truncate(4, id)"])
    assert partition_columns(fields) == ["sku", "at_day", "id_trunc"]
    assert derive("sku").equals(ROWS)


def test_what_delta_can_not_express_stops_with_one_line():
    with pytest.raises(ConfigError, match=r"partition-by: bucket\(16, id\): Delta tables have "
                                          r"no bucket partitions"):
        check_fields(parse_partition_by(["bucket(16, id)"]))
    with pytest.raises(TerminalError, match=r"table shop.t has no column 'nope'"):
        derive("day(nope)")
    with pytest.raises(TerminalError, match=r"table shop.t: partition-by 'day\(sku\)' needs a "
                                            r"DATE, TIMESTAMP or TIMESTAMP_LTZ column"):
        derive("day(sku)")
    with pytest.raises(TerminalError, match=r"'hour\(d\)' needs a TIMESTAMP"):
        derive("hour(d)")
    with pytest.raises(TerminalError, match="already has"):
        add_partition_columns(ROWS.append_column("at_day", ROWS.column("d")),
                              parse_partition_by(["day(at)"]), "shop.t")


def config(**kw) -> DeltaSinkConfig:
    return DeltaSinkConfig.model_validate({"path": "/lake", **kw})


def test_table_paths_keep_each_name_one_folder():
    c = config()
    assert c.table_uri("shop.orders") == "/lake/shop/orders"
    assert c.table_uri("orders") == "/lake/orders"
    assert c.table_uri('"my shop"."Ördérs 1"') == "/lake/my shop/Ördérs 1"
    for bad in ('shop."../x"', '"a/b".c', 'shop."c:d"', 'shop."50%"', 'shop.".hidden"'):
        with pytest.raises(ValueError, match="is no safe folder name.*route the table"):
            c.table_uri(bad)
    assert config(path="s3://bucket/lake/").table_uri("shop.orders") == "s3://bucket/lake/shop/orders"
    assert config(**{"table-path": "{path}/{db}_{table}/delta"}).table_uri("s.t") == "/lake/s_t/delta"


def test_bad_options_are_refused():
    with pytest.raises(ValueError, match="has no {table}"):
        config(**{"table-path": "{path}/{db}"})
    with pytest.raises(ValueError, match="unknown placeholder"):
        config(**{"table-path": "{path}/{schema}/{table}"})
    with pytest.raises(ValueError, match="holds '%'"):
        config(path="/lake/50%25")
    with pytest.raises(ValueError, match="no ftp:// store"):
        config(path="ftp://host/lake")


def test_storage_options_are_secrets():
    c = config(**{"storage-options": {"AWS_SECRET_ACCESS_KEY": "s3cr3t"}})
    assert "s3cr3t" not in repr(c)
    assert c.storage() == {"AWS_SECRET_ACCESS_KEY": "s3cr3t"}
