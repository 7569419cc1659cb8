"""Snapshot reads and inserts staged by the iceberg writers as the table's data files
(:mod:`sinks.lake.staging`): added as they are (data files from their footers) in the
checkpoint's one transaction when their keys collide with nothing, merged when they do,
exactly once across a crash before and after the table's commit.  Read back with pyiceberg
and Polars."""
from __future__ import annotations

import os

import pytest

pytest.importorskip("pyiceberg")

from runtime.batch import ChangeBatch  # noqa: E402
from runtime.schema import Column, TableSchema  # noqa: E402
from runtime.types import T  # noqa: E402
from sinks.iceberg.config import IcebergSinkConfig  # noqa: E402
from sinks.iceberg.lineage import committed_checkpoint  # noqa: E402
from sinks.iceberg.sink import IcebergSink  # noqa: E402
from tests.integration.iceberg.reading import catalog, read_polars  # noqa: E402
from tests.integration.sinkdriver import SinkDriver  # noqa: E402

pytestmark = [pytest.mark.integration, pytest.mark.iceberg]

ORDERS = TableSchema("shop.orders", (Column("id", T("BIGINT"), False), Column("name", T("STRING")),
                                     Column("qty", T("INT"))), ("id",))
APP = "hub:p1:iceberg:job-1"


class Driver(SinkDriver):
    """The iceberg sink's writer and committer, one checkpoint per :meth:`checkpoint` call."""

    def __init__(self, root, **options):
        self.root = root
        super().__init__(IcebergSink(IcebergSinkConfig.model_validate(
            {"warehouse": str(root / "wh"), **options})), str(root / "state"), "p1")

    def table(self):
        return catalog(self.root / "wh").load_table(("shop", "orders"))

    def rows(self) -> dict:
        t = self.table().scan().to_arrow()
        rows = {r["id"]: (r["name"], r["qty"]) for r in t.to_pylist()}
        assert len(rows) == t.num_rows, "a key twice"
        polars = read_polars(self.table())
        assert sorted(polars.to_pylist(), key=repr) == sorted(t.to_pylist(), key=repr)
        return rows


def staged_paths(committables: list[dict]) -> list[str]:
    return [f["path"] for c in committables for f in c.get("staged", ())]


def snapshots(table) -> list[tuple[str, str]]:
    return [(s.summary.operation.value, s.summary.additional_properties.get("hub.checkpoint-id"))
            for s in table.snapshots()]


def test_a_snapshot_is_added_as_the_writers_files(tmp_path):
    d = Driver(tmp_path, **{"target-file-size": "1KB"})
    staged = d.stage(*[ChangeBatch(ORDERS, "r" * 100, rows=[(i, f"n{i}", i)
                                                            for i in range(j, j + 100)])
                       for j in range(0, 400, 100)])
    files = staged_paths(staged)
    assert len(files) >= 2
    d.committer.commit(staged, d.context())
    assert d.rows() == {i: (f"n{i}", i) for i in range(400)}
    table = d.table()
    in_table = sorted(t.file.file_path for t in table.scan().plan_files())
    assert in_table == sorted("file://" + p for p in files)  # the writers' files, as they are
    assert snapshots(table) == [("append", "1")]
    assert committed_checkpoint(table, APP) == 1


@pytest.mark.parametrize("case", ["held", "changed", "none"])
def test_staged_keys_are_added_or_merged(tmp_path, case):
    """A staged key the table holds or the checkpoint changes again: merged (the files are
    deleted after the commit); none: added with the upsert of the other changes in one
    snapshot."""
    d = Driver(tmp_path)
    d.checkpoint(ChangeBatch(ORDERS, "rr", rows=[(1, "a", 1), (2, "b", 2)]))
    batch = {"held": ChangeBatch(ORDERS, "rc", rows=[(2, "b2", 20), (3, "c", 3)]),
             "changed": ChangeBatch(ORDERS, "cucdc", rows=[(5, "e", 5), (5, "e2", 50),
                                                           (6, "f", 6), (6, "f", 6), (8, "h", 8)]),
             "none": ChangeBatch(ORDERS, "cud", rows=[(3, "c", 3), (1, "a2", 10), (2, "b", 2)])}
    want = {"held": {1: ("a", 1), 2: ("b2", 20), 3: ("c", 3)},
            "changed": {1: ("a", 1), 2: ("b", 2), 5: ("e2", 50), 8: ("h", 8)},
            "none": {1: ("a2", 10), 3: ("c", 3)}}
    staged = d.stage(batch[case])
    d.committer.commit(staged, d.context())
    assert d.rows() == want[case]
    assert [cp for _, cp in snapshots(d.table())] == ["1", "2"]
    gone = [p for p in staged_paths(staged) if not os.path.exists(p)]
    assert len(gone) == (0 if case == "none" else len(staged_paths(staged)))


@pytest.mark.parametrize("point", ["iceberg-files-staged", "iceberg-before-table-commit",
                                   "iceberg-table-committed", "iceberg-checkpoint-committed"])
def test_a_crash_around_adding_staged_files_commits_them_once(tmp_path, monkeypatch, point):
    import sinks.iceberg.committer as iceberg_committer
    import sinks.lake.committer as lake_committer

    class Crash(Exception):
        pass

    def crash_point(name: str, checkpoint: int) -> None:
        if name == point:
            raise Crash(name)

    d = Driver(tmp_path)
    d.checkpoint(ChangeBatch(ORDERS, "rr", rows=[(1, "a", 1), (2, "b", 2)]))
    staged = d.stage(ChangeBatch(ORDERS, "cud", rows=[(3, "c", 3), (1, "a2", 10), (2, "b", 2)]))
    with monkeypatch.context() as m:
        m.setattr(iceberg_committer, "crash_point", crash_point)
        m.setattr(lake_committer, "crash_point", crash_point)
        with pytest.raises(Exception, match=point):  # Crash, or in the catalog's translation
            d.committer.commit(staged, d.context())
    again = d.sink.create_committer()
    again.recover(staged, d.context())
    again.commit(staged, d.context())
    assert d.rows() == {1: ("a2", 10), 3: ("c", 3)}
    assert [cp for _, cp in snapshots(d.table())] == ["1", "2"]
    assert all(os.path.exists(p) for p in staged_paths(staged))


def test_every_logical_type_staged_added_and_merged(tmp_path):
    """Every logical type through a staged file: added as it is (checkpoint 1), and read back
    for a merge (checkpoint 2 inserts keys the table holds): the values stay exact."""
    import datetime as dt
    from decimal import Decimal

    schema = TableSchema("shop.orders", (
        Column("id", T("INT"), False), Column("b", T("BOOLEAN")), Column("t8", T("TINYINT")),
        Column("u64", T("DECIMAL(20,0)")), Column("d", T("DECIMAL(38,10)")),
        Column("f", T("FLOAT")), Column("s", T("VARCHAR(10)")), Column("j", T("JSON")),
        Column("bin", T("BINARY(3)")), Column("day", T("DATE")), Column("tm", T("TIME(6)")),
        Column("ts", T("TIMESTAMP(6)")), Column("tz", T("TIMESTAMP_LTZ(3)")),
        Column("set", T("ARRAY<STRING>"))), ("id",))
    row = (1, True, -128, Decimal("18446744073709551615"),
           Decimal("1234567890123456789012345678.0123456789"), 1.5, "ümlaut", '{"a": [1]}',
           b"\x00\x01\x00", dt.date(2026, 12, 6),
           dt.timedelta(hours=23, minutes=59, seconds=59, microseconds=999999),
           dt.datetime(2026, 12, 6, 1, 2, 3, 456789),
           dt.datetime(2026, 12, 6, 1, 2, 3, 456000, tzinfo=dt.timezone.utc), ["a", "b"])
    nulls = (2,) + (None,) * (len(row) - 1)
    d = Driver(tmp_path)
    d.checkpoint(ChangeBatch(schema, "rr", rows=[(1,) + nulls[1:], nulls]))
    d.checkpoint(ChangeBatch(schema, "cc", rows=[row, (2,) + row[1:]]))  # held: merged
    table = d.table()
    assert [op for op, _ in snapshots(table)] == ["append", "overwrite"]
    want = dict(zip(schema.names, row))
    want["tm"] = dt.time(23, 59, 59, 999999)
    for got in table.scan().to_arrow().to_pylist():
        assert {k: v for k, v in got.items() if k != "id"} == {
            k: v for k, v in want.items() if k != "id"}
