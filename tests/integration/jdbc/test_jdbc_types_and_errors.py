"""Type round trips, rejected rows (error or dead letter) and schema evolution."""
from __future__ import annotations

import json
import re
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal

import pytest

from runtime.batch import ChangeBatch
from runtime.deadletter import DeadLetterQueue
from runtime.errors import BadRecordError, TerminalError
from runtime.schema import Column, SchemaChange, TableSchema
from runtime.sink import WriterContext
from runtime.types import T
from sinks.jdbc.config import JdbcSinkConfig
from sinks.jdbc.sink import JdbcSink
from tests.integration.jdbc.writing import write_and_commit

pytestmark = [pytest.mark.integration, pytest.mark.jdbc]

TYPES = TableSchema("src.types", (
    Column("id", T("BIGINT"), False), Column("b", T("BOOLEAN")), Column("i8", T("TINYINT")),
    Column("i64", T("BIGINT")), Column("dec", T("DECIMAL(38,10)")),
    Column("u64", T("DECIMAL(20,0)")), Column("f", T("FLOAT")), Column("d", T("DOUBLE")),
    Column("s", T("STRING")), Column("vc", T("VARCHAR(10)")), Column("bin", T("BINARY(4)")),
    Column("bytes", T("BYTES")), Column("dt", T("DATE")), Column("tm", T("TIME(6)")),
    Column("ts", T("TIMESTAMP(6)")), Column("ltz", T("TIMESTAMP_LTZ(6)")), Column("js", T("JSON")),
), ("id",))
ROW = (1, True, -7, -9223372036854775808, Decimal("-1234567890123456789012345678.0123456789"),
       Decimal("18446744073709551615"), 0.5, 0.1, "quote ' back \\ tab\t é 😀", "ten chars!",
       b"\x01\x00\x00\x00", b"ab\x00\x00", date(1999, 12, 31), timedelta(hours=23, microseconds=1),
       datetime(2024, 2, 29, 23, 59, 59, 999999), datetime(2024, 1, 1, 0, 0, 0, 1, tzinfo=timezone.utc),
       '{"a": [1, 2], "b": {"c": "d"}}')
NULLS = (2,) + (None,) * (len(ROW) - 1)


def run(db, batches, changes=(), dead_letter=None, **options):
    sink = JdbcSink(JdbcSinkConfig.model_validate({"url": db.url, **options}))
    write_and_commit(sink, WriterContext("tt", 0, 1, "a1", "/tmp", dead_letter or DeadLetterQueue()),
                     batches)


def test_every_logical_type_round_trips(db):
    run(db, [ChangeBatch.of_rows(TYPES, [ROW, NULLS])])
    got = {r[0]: r for r in db.query(f"SELECT * FROM {db.q('types')}")}
    assert got[2] == NULLS
    r = got[1]
    assert r[0:2] == (1, True) or r[0:2] == (1, 1)
    assert r[2:6] == ROW[2:6]  # exact DECIMAL, unsigned BIGINT range
    assert r[6] == 0.5 and r[7] == 0.1
    assert r[8:10] == ROW[8:10]  # strings with quotes, backslashes, tabs, 4-byte UTF-8
    assert bytes(r[10]) == ROW[10] and bytes(r[11]) == ROW[11]  # trailing zero bytes kept
    assert r[12] == ROW[12]
    tm = r[13]
    assert (tm if isinstance(tm, timedelta) else timedelta(
        hours=tm.hour, minutes=tm.minute, seconds=tm.second, microseconds=tm.microsecond)) == ROW[13]
    assert r[14] == ROW[14]  # microseconds
    ltz = r[15] if r[15].tzinfo else r[15].replace(tzinfo=timezone.utc)
    assert ltz == ROW[15]
    js = r[16] if isinstance(r[16], dict) else json.loads(r[16])
    assert js == {"a": [1, 2], "b": {"c": "d"}}  # an object, not a quoted string
    if db.flavor == "postgres":
        assert db.query("SELECT jsonb_typeof(js) FROM types WHERE id = 1") == [("object",)]


ITEMS = TableSchema("src.items", (Column("id", T("BIGINT"), False), Column("code", T("VARCHAR(3)")),
                                  Column("qty", T("INT"))), ("id",))


def test_rejected_row_names_table_key_and_column(db):
    rows = [(1, "ok", 1), (2, "too long", 2), (3, "ok", 3)]
    with pytest.raises(BadRecordError) as info:
        run(db, [ChangeBatch.of_rows(ITEMS, rows)])
    message = str(info.value)
    assert "items" in message and "'id': 2" in message and "column code" in message


def test_rejected_rows_go_to_the_dead_letter_with_tolerance_all(db, tmp_path):
    dlq = DeadLetterQueue("all", str(tmp_path), "tt")
    rows = [(i, "ok" if i % 50 else "toolong", i) for i in range(1, 201)]
    run(db, [ChangeBatch.of_rows(ITEMS, rows)], dead_letter=dlq)
    assert dlq.count == 4
    assert db.count("items") == 196
    lines = (tmp_path / "tt.deadletter.jsonl").read_text().splitlines()
    assert all("column code" in json.loads(line)["error"] for line in lines)


def evolve(db, mode):
    v2 = TableSchema("src.items", ITEMS.columns + (Column("note", T("STRING")),), ("id",))
    v3 = TableSchema("src.items", (ITEMS.columns[0], ITEMS.columns[1],
                                   Column("amount", T("BIGINT")), v2.columns[3]), ("id",))
    run(db, [ChangeBatch.of_rows(ITEMS, [(1, "a", 1)]),
             SchemaChange("add_column", "src.items", v2, {"column": "note"}),
             ChangeBatch.of_rows(v2, [(2, "b", 2, "n2")]),
             SchemaChange("rename_column", "src.items", TableSchema(
                 "src.items", (ITEMS.columns[0], ITEMS.columns[1], Column("amount", T("INT")),
                               v2.columns[3]), ("id",)), {"old": "qty", "new": "amount"}),
             SchemaChange("alter_column_type", "src.items", v3, {"column": "amount"}),
             ChangeBatch.of_rows(v3, [(3, "c", 2**40, "n3")])],
        **{"schema-evolution": mode})
    cols = [r[0] for r in db.query(
        "SELECT column_name FROM information_schema.columns WHERE table_name = 'items' "
        + ("AND table_schema = 'public' " if db.flavor == "postgres" else
           "AND table_schema = DATABASE() ") + "ORDER BY ordinal_position")]
    return cols


def test_schema_evolution_evolve(db):
    assert evolve(db, "evolve") == ["id", "code", "amount", "note"]
    assert db.rows("items") == {(1, "a", 1, None), (2, "b", 2, "n2"), (3, "c", 2**40, "n3")}


def test_schema_evolution_lenient_keeps_old_columns(db):
    assert evolve(db, "lenient") == ["id", "code", "qty", "note", "amount"]
    assert db.rows("items", "id, qty, amount") == {(1, 1, None), (2, 2, None), (3, None, 2**40)}


def test_schema_evolution_ignore_and_exception(db):
    assert evolve(db, "ignore") == ["id", "code", "qty"]
    assert db.rows("items", "id, code") == {(1, "a"), (2, "b"), (3, "c")}
    with pytest.raises(TerminalError, match="exception"):
        run(db, [SchemaChange("truncate_table", "src.items", ITEMS)],
            **{"schema-evolution": "exception"})


NOTES = TableSchema("src.notes", (Column("id", T("BIGINT"), False), Column("co de", T("VARCHAR(3)")),
                                  Column("no te", T("STRING"))), ("id",))


def test_every_rejection_names_table_key_column_and_record_and_can_be_skipped(db, tmp_path):
    # PostgreSQL text can't hold NUL (its error names no column); MariaDB can, so there a
    # value too long for a column whose name has a space in it
    bad = (2, "ok", "a\x00b") if db.flavor == "postgres" else (2, "too long", "b")
    column = "no te" if db.flavor == "postgres" else "co de"
    rows = [(1, "ok", "a"), bad, (3, "ok", "c")]
    with pytest.raises(BadRecordError) as info:
        run(db, [ChangeBatch.of_rows(NOTES, rows)])
    message = str(info.value)
    assert "notes" in message and "'id': 2" in message and f"column {column}:" in message
    assert "\n" not in message
    m = re.search(r"--skip-record (\w+)", message)
    assert m, message
    # the way out: that one record to the dead letters, the rest written
    dlq = DeadLetterQueue("none", str(tmp_path), "tt", skip={m.group(1)})
    run(db, [ChangeBatch.of_rows(NOTES, rows)], dead_letter=dlq)
    assert dlq.count == 1
    assert db.rows("notes", "id") == {(1,), (3,)}
    entry = json.loads((tmp_path / "tt.deadletter.jsonl").read_text())
    assert entry["record_id"] == m.group(1) and entry["record"]["id"] == 2
    # another bad record still stops the pipeline
    with pytest.raises(BadRecordError):
        run(db, [ChangeBatch.of_rows(NOTES, [(4, "too long", "d")])], dead_letter=dlq)
