"""The iceberg committer against real Iceberg tables (pyiceberg's sql catalog on SQLite and on
a throwaway PostgreSQL), read back with pyiceberg and Polars: copy-on-write upserts and
deletes by (composite) key, idempotent replays, pruning by key bounds, partition specs,
schema evolution, compaction and snapshot expiry."""
from __future__ import annotations

import random
from collections import Counter
from decimal import Decimal

import pytest

from runtime.errors import TerminalError
from runtime.schema import Column, TableSchema
from runtime.sink import CommitContext
from runtime.types import T
from sinks.iceberg.committer import IcebergCommitter
from sinks.iceberg.config import IcebergSinkConfig
from sinks.iceberg.lineage import committed_checkpoint
from tests.integration.iceberg.changes import apply, table_changes
from tests.integration.iceberg.reading import catalog, read_polars

pytestmark = [pytest.mark.integration, pytest.mark.iceberg]

SCHEMA = TableSchema("shop.orders", (Column("region", T("VARCHAR(8)"), False),
                                     Column("id", T("BIGINT"), False),
                                     Column("qty", T("INT")),
                                     Column("price", T("DECIMAL(12,2)"))), ("region", "id"))


def committer(tmp_path, **options) -> IcebergCommitter:
    return IcebergCommitter(IcebergSinkConfig.model_validate(
        {"warehouse": str(tmp_path / "wh"), **options}))


def ctx(cp: int, job: str = "job-1") -> CommitContext:
    return CommitContext("p1", cp, None, "", job)


def live(table) -> dict:
    t = table.scan().to_arrow()
    return {(r["region"], r["id"]): (r["region"], r["id"], r["qty"], r["price"])
            for r in t.to_pylist()}


def test_upserts_deletes_and_key_changes_by_composite_key(tmp_path):
    c = committer(tmp_path)
    rnd = random.Random(7)
    state: dict = {}
    for cp in range(1, 9):
        events = []
        for _ in range(400):
            region, id_ = rnd.choice("ab"), rnd.randrange(300)
            op = rnd.choice("cuud") if (region, id_) in state else "c"
            price = Decimal(f"{rnd.randrange(10**4)}.25")
            events.append((op, (region, id_, rnd.randrange(100), price)))
        # a primary-key change: delete of the old key, insert of the new one
        if state:
            old = next(iter(state.values()))
            events += [("d", old), ("c", ("z",) + old[1:])]
        apply(state, SCHEMA, events)
        c.commit_table(table_changes(SCHEMA, cp, events), ctx(cp))
    table = catalog(tmp_path / "wh").load_table(("shop", "orders"))
    assert live(table) == state
    assert sorted(table.schema().identifier_field_names()) == ["id", "region"]
    # a reader that is not ours
    polars_rows = read_polars(table)
    assert Counter(map(tuple, (r.values() for r in polars_rows.to_pylist()))) == \
        Counter(state.values())
    # one snapshot per checkpoint, each tagged
    tags = [s.summary.get("hub.checkpoint-id") for s in table.snapshots()]
    assert tags == [str(i) for i in range(1, 9)]
    assert {s.summary.get("hub.app-id") for s in table.snapshots()} == {"hub:p1:iceberg:job-1"}


def test_a_replayed_checkpoint_is_skipped(tmp_path):
    c = committer(tmp_path)
    first = [("c", ("a", i, i, Decimal("1.00"))) for i in range(10)]
    c.commit_table(table_changes(SCHEMA, 1, first), ctx(1))
    second = [("u", ("a", 1, 100, Decimal("2.00"))), ("d", ("a", 2, 2, Decimal("1.00")))]
    c.commit_table(table_changes(SCHEMA, 2, second), ctx(2))
    # a replay of checkpoint 1 (a crash before its segments were deleted) must not bring
    # back key 2 nor the old value of key 1; checkpoint 2 again changes nothing either
    fresh = committer(tmp_path)
    fresh.commit_table(table_changes(SCHEMA, 1, first), ctx(1))
    fresh.commit_table(table_changes(SCHEMA, 2, second), ctx(2))
    table = catalog(tmp_path / "wh").load_table(("shop", "orders"))
    assert len(table.snapshots()) == 2
    assert committed_checkpoint(table, "hub:p1:iceberg:job-1") == 2
    assert live(table) == apply(apply({}, SCHEMA, first), SCHEMA, second)
    # another pipeline's checkpoints are its own
    assert committed_checkpoint(table, "hub:other:iceberg:job-1") is None
    # a fresh start of the pipeline (a new job id: checkpoints from 1 again, --keep-output)
    # is not taken for a replay
    fresh.commit_table(table_changes(SCHEMA, 1, [("c", ("b", 1, 1, None))]), ctx(1, "job-2"))
    table = table.refresh()
    assert ("b", 1) in live(table) and len(table.snapshots()) == 3
    assert committed_checkpoint(table, "hub:p1:iceberg:job-1") == 2
    assert committed_checkpoint(table, "hub:p1:iceberg:job-2") == 1


def test_only_files_whose_key_bounds_hold_a_changed_key_are_rewritten(tmp_path):
    c = committer(tmp_path)
    for cp in range(1, 6):  # five files with key ranges [1000*cp, 1000*cp + 999]
        c.commit_table(table_changes(SCHEMA, cp, [("r", ("a", 1000 * cp + i, i, None))
                                                  for i in range(1000)]), ctx(cp))
    table = catalog(tmp_path / "wh").load_table(("shop", "orders"))
    assert table.current_snapshot().summary["operation"].value == "append"  # the fast path
    c.commit_table(table_changes(SCHEMA, 6, [("u", ("a", 3005, -1, None)),
                                             ("d", ("a", 3007, 7, None))]), ctx(6))
    table = table.refresh()
    s = table.current_snapshot().summary
    assert s["operation"].value == "overwrite"
    assert s["deleted-data-files"] == "1" and s["total-records"] == str(5000 - 1)
    rows = {r["id"]: r["qty"] for r in table.scan().to_arrow().to_pylist()}
    assert rows[3005] == -1 and 3007 not in rows and len(rows) == 4999


def test_changelog_tables_keep_every_change_with_op_ts_and_seq(tmp_path):
    keyless = TableSchema("shop.log", (Column("id", T("INT")), Column("msg", T("STRING"))), ())
    c = committer(tmp_path)
    events = [("c", (1, "a")), ("u", (1, "b")), ("d", (1, "b"))]
    c.commit_table(table_changes(keyless, 1, events, collapsed=False), ctx(1))
    c.commit_table(table_changes(keyless, 1, events, collapsed=False), ctx(1))  # replay
    t = catalog(tmp_path / "wh").load_table(("shop", "log")).scan().to_arrow().sort_by("seq")
    assert t.column_names == ["id", "msg", "op", "ts_ms", "seq"]
    assert t.column("op").to_pylist() == ["c", "u", "d"]
    assert t.column("msg").to_pylist() == ["a", "b", "b"]


def test_partition_spec_from_partition_by(tmp_path):
    schema = TableSchema("shop.events", (Column("id", T("BIGINT"), False),
                                         Column("at", T("TIMESTAMP(6)")),
                                         Column("code", T("STRING"))), ("id",))
    c = committer(tmp_path, **{"partition-by": ["day(at)", "bucket(4, id)", "truncate(2, code)"],
                               "target-file-size": "1MB"})
    import datetime as dt

    base = dt.datetime(2026, 12, 1)
    events = [("c", (i, base + dt.timedelta(hours=7 * i), f"k{i % 5}x")) for i in range(40)]
    c.commit_table(table_changes(schema, 1, events), ctx(1))
    c.commit_table(table_changes(schema, 2, [("u", (3, base, "moved")), ("d", (4, None, None))]),
                   ctx(2))
    table = catalog(tmp_path / "wh").load_table(("shop", "events"))
    assert [str(f.transform) for f in table.spec().fields] == ["day", "bucket[4]", "truncate[2]"]
    assert table.properties["write.target-file-size-bytes"] == str(1 << 20)
    assert len(table.inspect.partitions()) > 10
    rows = {r["id"]: r for r in table.scan().to_arrow().to_pylist()}
    assert len(rows) == 39 and rows[3]["code"] == "moved" and 4 not in rows
    # partition pruning works for readers
    day = table.scan(row_filter="at >= '2026-12-05T00:00:00' and at < '2026-12-06T00:00:00'")
    on_day_5 = {i for i in range(40) if (base + dt.timedelta(hours=7 * i)).day == 5} - {4}
    assert {r["id"] for r in day.to_arrow().to_pylist()} == on_day_5


def test_schema_evolution(tmp_path):
    v1 = TableSchema("shop.items", (Column("id", T("INT"), False), Column("n", T("INT")),
                                    Column("gone", T("STRING")), Column("f", T("FLOAT"))), ("id",))
    c = committer(tmp_path)
    c.commit_table(table_changes(v1, 1, [("c", (1, 1, "x", 1.5))]), ctx(1))
    # added column, dropped column, int -> long, float -> double
    v2 = TableSchema("shop.items", (Column("id", T("INT"), False), Column("n", T("BIGINT")),
                                    Column("f", T("DOUBLE")), Column("added", T("DATE"))), ("id",))
    c.commit_table(table_changes(v2, 2, [("c", (2, 2**40, 2.25, None))]), ctx(2))
    table = catalog(tmp_path / "wh").load_table(("shop", "items"))
    types = {f.name: str(f.field_type) for f in table.schema().fields}
    assert types == {"id": "int", "n": "long", "gone": "string", "f": "double", "added": "date"}
    rows = {r["id"]: r for r in table.scan().to_arrow().to_pylist()}
    assert rows[1]["gone"] == "x" and rows[2]["gone"] is None and rows[2]["n"] == 2**40
    assert len(table.snapshots()) == 2  # the schema change rode in the checkpoint's commit
    v3 = TableSchema("shop.items", (Column("id", T("INT"), False), Column("n", T("STRING"))),
                     ("id",))
    with pytest.raises(TerminalError, match=r"table shop\.items column n: the source's type "
                                            r"STRING .* can't be stored .* long"):
        c.commit_table(table_changes(v3, 3, [("c", (3, "x"))]), ctx(3))


def test_postgresql_catalog(tmp_path, postgres_server):
    import uuid

    db = "ice_" + uuid.uuid4().hex[:8]
    with postgres_server.connect() as conn:
        conn.execute(f"CREATE DATABASE {db}")
    uri = (f"postgresql+psycopg://{postgres_server.user}:{postgres_server.password}@"
           f"{postgres_server.host}:{postgres_server.port}/{db}")
    c = committer(tmp_path, **{"catalog-uri": uri})
    events = [("c", ("a", i, i, None)) for i in range(5)] + [("d", ("a", 0, 0, None))]
    c.commit_table(table_changes(SCHEMA, 1, events), ctx(1))
    table = catalog(tmp_path / "wh", uri=uri).load_table(("shop", "orders"))
    assert sorted(live(table)) == [("a", i) for i in range(1, 5)]
    assert c.existing_output("p1") == ["iceberg table shop.orders (checkpoints up to 1)"]
    assert c.existing_output("p2") == []


def test_compaction_and_expiry_keep_rows_and_the_checkpoint(tmp_path):
    c = committer(tmp_path, **{"retention": "0s"})
    state: dict = {}
    for cp in range(1, 9):
        events = [("c", ("a", cp * 10 + i, i, None)) for i in range(10)]
        apply(state, SCHEMA, events)
        c.commit_table(table_changes(SCHEMA, cp, events), ctx(cp))
    table = catalog(tmp_path / "wh").load_table(("shop", "orders"))
    files_before = len(table.inspect.files())
    data_dir = tmp_path / "wh" / "shop" / "orders" / "data"
    on_disk = len(list(data_dir.iterdir()))
    c.maintain(["shop.orders"], ctx(8))
    table = table.refresh()
    assert files_before == 8 and len(table.inspect.files()) == 1
    assert live(table) == state
    assert len(table.snapshots()) == 1  # older ones expired (retention 0s)
    assert table.current_snapshot().summary["hub.maintenance"] == "compaction"
    assert committed_checkpoint(table, "hub:p1:iceberg:job-1") == 8
    assert len(list(data_dir.iterdir())) == 1 < on_disk  # files of expired snapshots deleted
    # a replay of checkpoint 8 after maintenance is still skipped
    c.commit_table(table_changes(SCHEMA, 8, [("d", ("a", 80, 0, None))]), ctx(8))
    assert live(table.refresh()) == state


def test_rest_catalog(tmp_path):
    """Apache Iceberg's own REST catalog server (Java, from Maven Central): the sink creates
    the table and commits through the REST API; idempotence holds there too."""
    from pyiceberg.catalog.rest import RestCatalog

    from tests.servers import iceberg_rest

    server = iceberg_rest.shared()
    ns = "rest_" + tmp_path.name[-20:].replace("-", "_")
    c = committer(tmp_path, **{"catalog-type": "rest", "catalog-uri": server.uri,
                               "warehouse": server.warehouse, "namespace": ns})
    events = [("c", ("a", i, i, Decimal("1.00"))) for i in range(5)] + \
        [("u", ("a", 1, 10, None)), ("d", ("a", 2, 2, None))]
    c.commit_table(table_changes(SCHEMA, 1, events), ctx(1))
    c.commit_table(table_changes(SCHEMA, 2, [("d", ("a", 3, 3, None))]), ctx(2))
    c.commit_table(table_changes(SCHEMA, 1, events), ctx(1))  # a replay: skipped
    table = RestCatalog("check", uri=server.uri).load_table((ns, "orders"))
    assert live(table) == apply(apply({}, SCHEMA, events), SCHEMA, [("d", ("a", 3, 3, None))])
    assert [s.summary.get("hub.checkpoint-id") for s in table.snapshots()] == ["1", "2"]


def test_a_fresh_start_over_an_earlier_runs_tables_asks_first(tmp_path):
    """``hub run`` without a checkpoint over tables holding this pipeline's snapshots stops
    with one line; ``--keep-output`` goes on, and its checkpoint 1 is applied (a new job id),
    not skipped as an earlier run's checkpoint 1."""
    from tests.killing import hub as hub_process

    p = tmp_path / "p.toml"
    p.write_text(f"[pipeline]\nname='x'\n[checkpoint]\ndir='{tmp_path}/state'\n[source]\n"
                 f"type='datagen'\ntables=['orders']\nrows=500\n[sink]\ntype='iceberg'\n"
                 f"warehouse='{tmp_path}/wh'\n")

    def run(*args):
        proc = hub_process("run", str(p), "--no-progress", *args)
        _, err = proc.communicate(timeout=120)
        return proc.returncode, err

    assert run()[0] == 0
    table = catalog(tmp_path / "wh").load_table(("datagen", "orders"))
    rows = table.scan().to_arrow().num_rows
    assert rows == 500
    code, err = run("--fresh")
    lines = [ln for ln in err.splitlines() if "already holds output" in ln]
    assert code != 0 and len(lines) == 1 and "iceberg table datagen.orders" in lines[0], err
    code, err = run("--fresh", "--keep-output")
    assert code == 0, err
    table = table.refresh()
    jobs = {s.summary.get("hub.app-id") for s in table.snapshots()}
    assert len(jobs) == 2  # the second run committed under its own job id
    assert table.scan().to_arrow().num_rows == 500  # the same keys upserted again


def test_every_logical_type_round_trips(tmp_path):
    import datetime as dt

    schema = TableSchema("shop.types", (
        Column("id", T("INT"), False), Column("b", T("BOOLEAN")), Column("t8", T("TINYINT")),
        Column("i16", T("SMALLINT")), Column("u64", T("DECIMAL(20,0)")),
        Column("d", T("DECIMAL(38,10)")), Column("f", T("FLOAT")), Column("g", T("DOUBLE")),
        Column("s", T("VARCHAR(10)")), Column("j", T("JSON")), Column("bin", T("BINARY(3)")),
        Column("day", T("DATE")), Column("tm", T("TIME(6)")), Column("ts", T("TIMESTAMP(6)")),
        Column("tz", T("TIMESTAMP_LTZ(3)")), Column("set", T("ARRAY<STRING>"))), ("id",))
    row = (1, True, -128, 32767, Decimal("18446744073709551615"),
           Decimal("1234567890123456789012345678.0123456789"), 1.5, 2.25, "ümlaut", '{"a": [1]}',
           b"\x00\x01\x00", dt.date(2026, 12, 6), dt.timedelta(hours=23, minutes=59, seconds=59,
                                                               microseconds=999999),
           dt.datetime(2026, 12, 6, 1, 2, 3, 456789),
           dt.datetime(2026, 12, 6, 1, 2, 3, 456000, tzinfo=dt.timezone.utc), ["a", "b"])
    committer(tmp_path).commit_table(table_changes(schema, 1, [("c", row)]), ctx(1))
    table = catalog(tmp_path / "wh").load_table(("shop", "types"))
    got = table.scan().to_arrow().to_pylist()[0]
    want = dict(zip(schema.names, row))
    want["tm"] = dt.time(23, 59, 59, 999999)
    assert got == want
    assert str(table.schema().find_field("tz").field_type) == "timestamptz"
    assert read_polars(table).to_pylist()[0]["u64"] == Decimal("18446744073709551615")


def test_hive_catalog(tmp_path, request):
    """A real Hive Metastore (the hive_metastore fixture of tests/integration/conftest.py):
    the sink creates the table there and commits through it; the metastore lists the table as
    an Iceberg table."""
    from pyiceberg.catalog.hive import HiveCatalog

    try:
        hive_metastore = request.getfixturevalue("hive_metastore")
    except pytest.FixtureLookupError:
        pytest.skip("no hive_metastore fixture in this tree yet (tests/servers/hive_metastore.py)")

    ns = "hive_" + tmp_path.name[-20:].replace("-", "_").lower()
    c = committer(tmp_path, **{"catalog-type": "hive", "catalog-uri": hive_metastore.uri,
                               "namespace": ns})
    events = [("c", ("a", i, i, Decimal("1.00"))) for i in range(5)] + [("d", ("a", 2, 2, None))]
    c.commit_table(table_changes(SCHEMA, 1, events), ctx(1))
    c.commit_table(table_changes(SCHEMA, 2, [("u", ("a", 3, 30, None))]), ctx(2))
    c.commit_table(table_changes(SCHEMA, 1, events), ctx(1))  # a replay: skipped
    table = HiveCatalog("check", uri=hive_metastore.uri).load_table((ns, "orders"))
    assert live(table) == apply(apply({}, SCHEMA, events), SCHEMA, [("u", ("a", 3, 30, None))])
    assert [s.summary.get("hub.checkpoint-id") for s in table.snapshots()] == ["1", "2"]
    hms = hive_metastore.table(ns, "orders")
    assert hms.parameters["table_type"].upper() == "ICEBERG"


def test_upserts_after_a_key_type_promotion(tmp_path):
    """Files written before int -> long of the key column keep 4-byte bounds (pyiceberg reads
    them as longs): a changed key in them is still found and replaced."""
    v1 = TableSchema("shop.k", (Column("id", T("INT"), False), Column("v", T("STRING"))), ("id",))
    v2 = TableSchema("shop.k", (Column("id", T("BIGINT"), False), Column("v", T("STRING"))),
                     ("id",))
    c = committer(tmp_path)
    c.commit_table(table_changes(v1, 1, [("c", (i, "old")) for i in range(10)]), ctx(1))
    c.commit_table(table_changes(v2, 2, [("u", (3, "new")), ("d", (4, None)),
                                         ("c", (2**40, "big"))]), ctx(2))
    table = catalog(tmp_path / "wh").load_table(("shop", "k"))
    rows = {r["id"]: r["v"] for r in table.scan().to_arrow().to_pylist()}
    assert rows[3] == "new" and 4 not in rows and rows[2**40] == "big" and len(rows) == 10
