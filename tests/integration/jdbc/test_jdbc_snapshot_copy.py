"""Snapshot rows (op ``r``) into PostgreSQL go by COPY straight into the target, inside the
checkpoint's transaction; where a key exists already they are upserted instead (issue 18).

Which statement wrote the rows is seen by a statement trigger on the target that logs the
first word of the client's statement (COPY, or INSERT of the staged upsert path); the log
rows belong to the writer's transaction, so a COPY undone by its savepoint leaves none.
"""
from __future__ import annotations

import pytest

from runtime.batch import ChangeBatch
from runtime.deadletter import DeadLetterQueue
from runtime.schema import Column, TableSchema
from runtime.sink import WriterContext
from runtime.types import T
from sinks.jdbc.config import JdbcSinkConfig
from sinks.jdbc.sink import JdbcSink
from tests.integration.jdbc.writing import write_and_commit

pytestmark = [pytest.mark.integration, pytest.mark.jdbc]

ITEMS = TableSchema("src.items", (Column("id", T("BIGINT"), False), Column("code", T("VARCHAR(3)")),
                                  Column("qty", T("INT"))), ("id",))
TRIGGER = """
CREATE TABLE items (id bigint PRIMARY KEY, code varchar(3), qty integer);
CREATE TABLE written_by (statement text);
CREATE FUNCTION log_statement() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO written_by VALUES (upper(split_part(ltrim(current_query()), ' ', 1)));
  RETURN NULL;
END $$;
CREATE TRIGGER log_statement AFTER INSERT ON items FOR EACH STATEMENT
  EXECUTE FUNCTION log_statement();
"""


def reads(rows) -> ChangeBatch:
    return ChangeBatch(ITEMS, "r" * len(rows), rows=rows)


def run(pg, batches, **options) -> None:
    sink = JdbcSink(JdbcSinkConfig.model_validate({"url": pg.url, **options}))
    write_and_commit(sink, WriterContext("tt", 0, 1, "a1", "/tmp", DeadLetterQueue()), batches)


def prepare(pg, *existing) -> None:
    conn = pg.connect()
    with conn:
        conn.execute(TRIGGER)
        for row in existing:
            conn.execute("INSERT INTO items VALUES (%s, %s, %s)", row)
        conn.execute("TRUNCATE written_by")


def statements(pg) -> list[str]:
    return [r[0] for r in pg.query("SELECT statement FROM written_by")]


def test_snapshot_rows_are_copied_into_an_empty_target(pg):
    prepare(pg)
    rows = [(i, f"c{i % 10}", i) for i in range(1, 3001)]
    run(pg, [reads(rows[:1500]), reads(rows[1500:])], **{"batch-size": 1000})
    assert pg.rows("items") == set(rows)
    assert set(statements(pg)) == {"COPY"}


def test_snapshot_rows_whose_keys_exist_are_upserted(pg):
    prepare(pg, (2, "old", 0), (7, "old", 0))
    first = [(i, "new", i) for i in range(1, 6)]
    later = [(i, "new", i) for i in range(6, 11)]
    run(pg, [reads(first), reads(later)], **{"batch-size": 5})
    assert pg.rows("items") == set(first + later)
    # the first batch's COPY met key 2 and was undone: upserts from then on for this table
    assert statements(pg) == ["INSERT", "INSERT"]


def test_snapshot_copy_can_be_turned_off(pg):
    prepare(pg)
    rows = [(i, "x", i) for i in range(1, 11)]
    run(pg, [reads(rows)], **{"snapshot-copy": False})
    assert pg.rows("items") == set(rows)
    assert statements(pg) == ["INSERT"]


def test_a_change_batch_is_never_copied(pg):
    prepare(pg)
    rows = [(i, "x", i) for i in range(1, 11)]
    run(pg, [ChangeBatch(ITEMS, "r" * 9 + "c", rows=rows)])
    assert pg.rows("items") == set(rows)
    assert statements(pg) == ["INSERT"]


def test_snapshot_rows_into_a_view_are_upserted(pg):
    # COPY can't fill a view; an updatable view takes the upsert path's INSERT ... ON CONFLICT
    prepare(pg)
    conn = pg.connect()
    with conn:
        conn.execute("ALTER TABLE items RENAME TO items_base")
        conn.execute("CREATE VIEW items AS SELECT * FROM items_base")
    rows = [(i, "x", i) for i in range(1, 11)]
    run(pg, [reads(rows[:5]), reads(rows[5:])], **{"batch-size": 5})
    assert pg.rows("items_base") == set(rows)
