"""Table and column names are data: hostile names are quoted in every statement of both
dialects; a table name the database would cut (PostgreSQL 63 bytes, MySQL 64 characters) is
shortened uniquely, a column name that long or a target table two source tables share is a
one-line error, never one shared table."""
from __future__ import annotations

import hashlib

import pytest

from runtime.batch import ChangeBatch
from runtime.deadletter import DeadLetterQueue
from runtime.errors import TerminalError
from runtime.schema import Column, SchemaChange, TableSchema, table_id
from runtime.sink import WriterContext
from runtime.types import T
from sinks.jdbc.config import JdbcSinkConfig
from sinks.jdbc.sink import JdbcSink
from tests.integration.jdbc.writing import write_and_commit

pytestmark = [pytest.mark.integration, pytest.mark.jdbc]


def run(db, steps, checkpoint: int = 1, **options) -> None:
    """Write ``steps`` (batches and schema changes) and commit them."""
    sink = JdbcSink(JdbcSinkConfig.model_validate({"url": db.url, **options}))
    write_and_commit(sink, WriterContext("names", 0, 1, "a1", "/tmp", DeadLetterQueue()), steps,
                     checkpoint)


def tables(db) -> set[str]:
    where = "table_schema = 'public'" if db.flavor == "postgres" else "table_schema = DATABASE()"
    return {r[0] for r in db.query(f"SELECT table_name FROM information_schema.tables WHERE "
                                   f"{where}")}


def columns(db, table: str) -> list[str]:
    where = "table_schema = 'public'" if db.flavor == "postgres" else "table_schema = DATABASE()"
    return [r[0] for r in db.query(
        f"SELECT column_name FROM information_schema.columns WHERE {where} AND table_name = %s "
        f"ORDER BY ordinal_position", (table,))]


# the source table part keeps no dot (a dot in a table id is the lead's table-id change); the
# target name gets one from the table-name template
HOSTILE_TABLE = "we\"ird`; DROP TABLE sentinel; -- x'y"
KEY = "id\"`; k"
COL = "c.1 \"x\"; DROP TABLE sentinel"
COL2 = "c`2' ;"


def test_hostile_names_are_quoted_in_every_statement(db):
    db.execute(f"CREATE TABLE sentinel (a INT)")
    tid = table_id("src", HOSTILE_TABLE)
    target = f"x.{HOSTILE_TABLE}"
    v1 = TableSchema(tid, (Column(KEY, T("BIGINT"), False), Column(COL, T("VARCHAR(20)")),
                                Column("qty", T("INT"))), (KEY,))
    v2 = TableSchema(tid, v1.columns + (Column(COL2, T("STRING")),), (KEY,))
    v3 = TableSchema(tid, (v1.columns[0], v1.columns[1], Column("amount", T("INT")),
                                v2.columns[3]), (KEY,))
    v4 = TableSchema(tid, (v1.columns[0], v1.columns[1], Column("amount", T("BIGINT")),
                                v2.columns[3]), (KEY,))
    v5 = TableSchema(tid, (v1.columns[0], v1.columns[1], v4.columns[2]), (KEY,))
    options = {"table-name": "x.{table}"}
    run(db, [ChangeBatch.of_rows(v1, [(1, "a'b\"c`", 1), (2, "b", 2), (3, "c", 3)]),
             ChangeBatch(v1, "d", rows=[(3, None, None)]),
             SchemaChange("add_column", tid, v2, {"column": COL2}),
             ChangeBatch.of_rows(v2, [(4, "d", 4, "n4")]),
             SchemaChange("rename_column", tid, v3, {"old": "qty", "new": "amount"}),
             SchemaChange("alter_column_type", tid, v4, {"column": "amount"}),
             ChangeBatch.of_rows(v4, [(5, "e", 2**40, "n5")])], **options)
    assert target in tables(db) and "sentinel" in tables(db)
    assert columns(db, target) == [KEY, COL, "amount", COL2]
    assert db.rows(target) == {(1, "a'b\"c`", 1, None), (2, "b", 2, None), (4, "d", 4, "n4"),
                               (5, "e", 2**40, "n5")}
    run(db, [SchemaChange("drop_column", tid, v5, {"column": COL2}),
             ChangeBatch(v5, "d", rows=[(1, None, None)])], checkpoint=10, **options)
    assert columns(db, target) == [KEY, COL, "amount"]
    assert db.rows(target) == {(2, "b", 2), (4, "d", 4), (5, "e", 2**40)}
    run(db, [SchemaChange("truncate_table", tid, v5)], checkpoint=20, **options)
    assert db.rows(target) == set()
    run(db, [SchemaChange("drop_table", tid, None)], checkpoint=30, **options)
    assert target not in tables(db) and "sentinel" in tables(db)
    # append mode writes with plain inserts
    run(db, [ChangeBatch.of_rows(v1, [(7, "g;'", 7)])], checkpoint=40,
        **{**options, "write-mode": "append"})
    assert db.rows(target) == {(7, "g;'", 7)}


def long_schema(db, suffix: str) -> TableSchema:
    limit = 63 if db.flavor == "postgres" else 64
    return TableSchema(f"src.{'t' * limit}{suffix}", (Column("id", T("BIGINT"), False),), ("id",))


def test_long_table_names_are_shortened_uniquely(db):
    """Two names that share their first 63 (PostgreSQL) / 64 (MySQL) characters stay two
    tables, with the documented short names; so do names of multi-byte characters."""
    limit = 63 if db.flavor == "postgres" else 64
    one, two = long_schema(db, "1"), long_schema(db, "2")
    wide = TableSchema("src." + "é" * 70, one.columns, ("id",))
    run(db, [ChangeBatch.of_rows(one, [(1,)]), ChangeBatch.of_rows(two, [(2,)]),
             ChangeBatch.of_rows(wide, [(3,)])])
    digest = {s.table: "_" + hashlib.sha1(s.table[4:].encode()).hexdigest()[:8]
              for s in (one, two, wide)}
    assert db.rows("t" * (limit - 9) + digest[one.table]) == {(1,)}
    assert db.rows("t" * (limit - 9) + digest[two.table]) == {(2,)}
    head = "é" * (27 if db.flavor == "postgres" else 55)  # 54 bytes / 55 characters
    assert db.rows(head + digest[wide.table]) == {(3,)}
    assert len([t for t in tables(db) if t.startswith(("ttt", "é"))]) == 3


def test_a_column_name_the_target_would_cut_is_an_error(db):
    name = "é" * 40 if db.flavor == "postgres" else "c" * 65  # 80 bytes / 65 characters
    schema = TableSchema("src.items", (Column("id", T("BIGINT"), False), Column(name, T("INT"))),
                         ("id",))
    with pytest.raises(TerminalError, match=f"column name '{name}' of source table src.items"):
        run(db, [ChangeBatch.of_rows(schema, [(1, 1)])])


def test_two_source_tables_with_one_target_name_are_an_error_naming_both(db):
    a = TableSchema("shop_a.items", (Column("id", T("BIGINT"), False),), ("id",))
    b = TableSchema("shop_b.items", (Column("id", T("BIGINT"), False),), ("id",))
    with pytest.raises(TerminalError) as info:
        run(db, [ChangeBatch.of_rows(a, [(1,)]), ChangeBatch.of_rows(b, [(1,)])])
    assert "shop_a.items" in str(info.value) and "shop_b.items" in str(info.value)
    # told apart by the template, both are written
    run(db, [ChangeBatch.of_rows(a, [(1,)]), ChangeBatch.of_rows(b, [(2,)])], checkpoint=2,
        **{"table-name": "{db}_{table}"})
    assert db.rows("shop_a_items") == {(1,)} and db.rows("shop_b_items") == {(2,)}


def test_hostile_names_in_a_composite_key_and_lenient_evolution(db):
    tid = table_id("src", "two; key`s \"t\"")
    v1 = TableSchema(tid, (Column(KEY, T("BIGINT"), False),
                                Column(COL2, T("VARCHAR(10)"), False),
                                Column(COL, T("INT"), False)), (KEY, COL2))
    v2 = TableSchema(tid, v1.columns[:2], (KEY, COL2))
    name = "two; key`s \"t\""
    run(db, [ChangeBatch.of_rows(v1, [(1, "a'", 1), (1, "b`", 2), (2, "a'", 3)]),
             ChangeBatch(v1, "d", rows=[(1, "b`", None)]),
             # lenient: a dropped NOT NULL column is kept and made nullable
             SchemaChange("drop_column", tid, v2, {"column": COL}),
             ChangeBatch.of_rows(v2, [(3, "c")])], **{"schema-evolution": "lenient"})
    assert db.rows(name) == {(1, "a'", 1), (2, "a'", 3), (3, "c", None)}
