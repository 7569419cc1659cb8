"""JDBC sink pieces that need no server: options, collapsing, SQL text of values."""
from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import numpy as np
import pyarrow as pa
import pytest
from pydantic import ValidationError

from runtime.schema import Column, SchemaChange, TableSchema
from runtime.types import T
from sinks.jdbc.config import JdbcSinkConfig
from sinks.jdbc.dialect import TableRef
from sinks.jdbc.evolution import plan
from sinks.jdbc.mysql import MySqlDialect, chunks, row_texts, sql_literals
from sinks.jdbc.postgres import PostgresDialect, csv_payload
from sinks.jdbc.types import hex_text, is_widening, time_text
from sinks.jdbc.writer import collapse


def test_url_user_password_and_schema():
    c = JdbcSinkConfig.model_validate({"url": "jdbc:postgresql://bob:pw@db:6543/shop",
                                       "password": "secret"})
    t = c.target()
    assert (t.dialect, t.host, t.port, t.database, t.user, t.password, t.schema) == (
        "postgres", "db", 6543, "shop", "bob", "secret", "public")
    m = JdbcSinkConfig.model_validate({"url": "mariadb://h/inv", "schema": "other"}).target()
    assert (m.dialect, m.port, m.user, m.schema) == ("mysql", 3306, "root", "other")
    assert "secret" not in repr(c)


@pytest.mark.parametrize("bad", [{"url": "oracle://h/db"}, {"url": "postgresql://h"},
                                 {"url": "mysql://h/db", "table-name": "{nope}"},
                                 {"url": "mysql://h/db", "schema-evolution": "sometimes"}])
def test_bad_options_are_rejected(bad):
    with pytest.raises(ValidationError):
        JdbcSinkConfig.model_validate(bad)


def test_collapse_keeps_the_last_event_per_key_in_order():
    rows = pa.table({"id": [1, 2, 1, 3, 2, 3], "v": ["a", "b", "c", "d", None, "f"]})
    ops = np.frombuffer(b"ccudd" + b"c", dtype=np.uint8)
    upserts, deletes = collapse(rows, ops, ["id"])
    assert upserts.to_pylist() == [{"id": 1, "v": "c"}, {"id": 3, "v": "f"}]
    assert deletes.to_pylist() == [{"id": 2}]


def test_binary_hex_keeps_trailing_zero_bytes_and_nulls():
    arr = pa.array([b"\x00\xff\x00", None, b""], pa.binary())
    assert hex_text(arr, "\\x").to_pylist() == ["\\x00ff00", None, "\\x"]
    assert hex_text(arr.slice(1), "X'", "'").to_pylist() == [None, "X''"]


def test_time_text_is_signed_and_exceeds_a_day():
    arr = pa.array([timedelta(hours=-838, minutes=-59, seconds=-59), timedelta(microseconds=5),
                    None], pa.duration("us"))
    assert time_text(arr).to_pylist() == ["-838:59:59.000000", "00:00:00.000005", None]


def test_mysql_literals_escape_and_chunk():
    schema = [Column("id", T("BIGINT")), Column("s", T("STRING")), Column("d", T("DECIMAL(5,2)"))]
    rows = pa.table({"id": [1, 2], "s": ["it's \\ ok", None],
                     "d": pa.array([Decimal("1.50"), None], pa.decimal128(5, 2))})
    text = row_texts(rows, schema)
    assert text.to_pylist() == ["(1,'it\\'s \\\\ ok',1.50),", "(2,NULL,NULL),"]
    assert chunks(text) == [b"(1,'it\\'s \\\\ ok',1.50),(2,NULL,NULL)"]
    assert chunks(text, limit=10) == [b"(1,'it\\'s \\\\ ok',1.50)", b"(2,NULL,NULL)"]
    assert sql_literals(pa.array([True, None]), T("BOOLEAN")).to_pylist() == ["1", "NULL"]


def test_postgres_csv_distinguishes_null_and_empty_and_keeps_json_text():
    cols = [Column("s", T("STRING")), Column("j", T("JSON"))]
    payload = csv_payload(pa.table({"s": ["", None], "j": ['{"a": "b"}', None]}), cols)
    assert payload == b'"","{""a"": ""b""}"\n,\n'


def test_widening():
    assert is_widening(T("INT"), T("BIGINT")) and not is_widening(T("BIGINT"), T("INT"))
    assert is_widening(T("DECIMAL(10,2)"), T("DECIMAL(12,2)"))
    assert not is_widening(T("DECIMAL(10,2)"), T("DECIMAL(10,3)"))
    assert is_widening(T("VARCHAR(10)"), T("STRING")) and is_widening(T("FLOAT"), T("DOUBLE"))


def test_evolution_plans_are_idempotent_and_lenient_never_drops():
    pg = PostgresDialect(JdbcSinkConfig(url="postgresql://h/db").target(), 1)
    ref = TableRef("public", "t")
    old = TableSchema("d.t", (Column("id", T("BIGINT"), False), Column("x", T("INT"), False)), ("id",))
    new = TableSchema("d.t", (old.columns[0],), ("id",))
    drop = SchemaChange("drop_column", "d.t", new, {"column": "x"})
    current = {"id": False, "x": False}
    assert plan(pg, "evolve", drop, ref, current, old) == ['ALTER TABLE "public"."t" DROP COLUMN "x"']
    assert plan(pg, "evolve", drop, ref, {"id": False}, old) == []  # replayed: nothing
    assert plan(pg, "lenient", drop, ref, current, old) == [
        'ALTER TABLE "public"."t" ALTER COLUMN "x" DROP NOT NULL']
    trunc = SchemaChange("truncate_table", "d.t", old)
    assert plan(pg, "lenient", trunc, ref, current, old) == []
    my = MySqlDialect(JdbcSinkConfig(url="mysql://h/db").target(), 1)
    assert plan(my, "evolve", trunc, TableRef("db", "t"), current, old) == ["TRUNCATE TABLE `db`.`t`"]


def test_xids_name_pipeline_subtask_and_checkpoint():
    my = MySqlDialect(JdbcSinkConfig(url="mysql://h/db").target(), 1)
    assert my.xid("orders", 1, 42) == "hub:orders:1:42"
    assert my.xid("orders", 1, 42, 2) == "hub:orders:1:42.2"
    long = my.xid("p" * 200, 3, 10**9)
    assert len(long) <= 64 and long.startswith(my.xid_prefix("p" * 200))


def test_added_column_defaults_from_the_mysql_ddl():
    from sources.mysql.ddl import added_column_defaults

    sql = ("ALTER TABLE `db`.`t` ADD COLUMN c INT NOT NULL DEFAULT 7, "
           "add `x y` varchar(10) not null default 'it''s \\\\ a' comment 'DEFAULT 9', "
           "ADD n INT NOT NULL, ADD e ENUM('p','q') NOT NULL, ADD z INT DEFAULT NULL, "
           "ADD ts TIMESTAMP DEFAULT CURRENT_TIMESTAMP, ADD INDEX (c), "
           "ADD (p INT DEFAULT -3, q DECIMAL(5,2) DEFAULT 1.50), ADD b BOOL DEFAULT TRUE, "
           "ADD w INT, /* DEFAULT 5 */ MODIFY v INT DEFAULT 4")
    assert added_column_defaults(sql) == {"c": "7", "x y": "it's \\ a", "n": "0", "e": "p",
                                          "p": "-3", "q": "1.50", "b": "1"}


def test_a_column_default_survives_serialisation_and_reaches_the_add_column_ddl():
    c = Column("la'bel", T("VARCHAR(20)"), False, default="it's \\ ;")
    assert Column.from_dict(c.to_dict()) == c
    assert "default" not in Column("a", T("INT")).to_dict()
    ref = TableRef("s", "t")
    pg = PostgresDialect.__new__(PostgresDialect).add_column_sql(ref, c)
    assert pg == ("ALTER TABLE \"s\".\"t\" ADD COLUMN \"la'bel\" varchar(20) DEFAULT  "
                  "E'it''s \\\\ ;'::varchar(20) NOT NULL")
    my = MySqlDialect.__new__(MySqlDialect).add_column_sql(ref, c)
    assert my == ("ALTER TABLE `s`.`t` ADD COLUMN `la'bel` VARCHAR(20) DEFAULT 'it\\'s \\\\ ;' "
                  "NOT NULL")
    # no default: as before, nullable
    assert PostgresDialect.__new__(PostgresDialect).add_column_sql(
        ref, Column("a", T("INT"), False)).endswith('"a" integer')


def _dialects():
    from sinks.jdbc.config import Target

    pg = PostgresDialect(Target("postgres", "db.example", 5433, "shop", "bob", "pw", "public"), 5)
    my = MySqlDialect(Target("mysql", "db.example", 3307, "shop", "bob", "pw", "shop"), 5)
    return pg, my


def test_one_translation_per_client_marks_transient_and_terminal():
    import psycopg
    import pymysql
    from psycopg import errors as pgerr

    from runtime.errors import TerminalError, TransientError

    pg, my = _dialects()
    transient = [(pg, pgerr.AdminShutdown("terminating connection due to administrator command")),
                 (pg, psycopg.OperationalError("the connection is closed")),
                 (pg, psycopg.OperationalError("connection failed: Connection refused")),
                 (pg, pgerr.CannotConnectNow("the database system is starting up")),
                 (pg, pgerr.DeadlockDetected("deadlock")), (pg, ConnectionResetError()),
                 (my, pymysql.err.OperationalError(2013, "Lost connection to server")),
                 (my, pymysql.err.OperationalError(1927, "Connection was killed")),
                 (my, pymysql.err.InterfaceError(0, "")),
                 (my, pymysql.err.OperationalError(1205, "Lock wait timeout exceeded"))]
    for d, exc in transient:
        assert isinstance(d.translate(exc, "writing"), TransientError), exc
    terminal = [(pg, pgerr.SyntaxError("syntax error")),
                (pg, pgerr.ObjectNotInPrerequisiteState("prepared transactions are disabled")),
                (my, pymysql.err.ProgrammingError(1064, "You have an error in your SQL"))]
    for d, exc in terminal:
        error = d.translate(exc, "writing")
        assert isinstance(error, TerminalError) and not error.transient, exc
        assert error.args[0].startswith("jdbc sink: writing: ")
    refused = [(pg, pgerr.InvalidPassword("password authentication failed for user \"bob\"")),
               (pg, psycopg.OperationalError('connection failed: connection to server at '
                                             '"1.2.3.4", port 5433 failed: FATAL:  password '
                                             'authentication failed for user "bob"')),
               (pg, psycopg.OperationalError('connection failed: FATAL:  role "bob" does not '
                                             'exist')),
               (my, pymysql.err.OperationalError(1045, "Access denied for user 'bob'@'x' "
                                                       "(using password: YES)"))]
    for d, exc in refused:
        error = d.translate(exc, "connecting")
        assert isinstance(error, TerminalError), exc
        assert "'bob'" in str(error) and "db.example:" in str(error) and "\n" not in str(error)


def test_every_dialect_asks_the_one_decision_for_socket_errors():
    # What the writer asks before going on without a refused DDL (try-evolve): a socket error
    # is a lost connection on either database, never a refusal.
    import pymysql

    pg, my = _dialects()
    for d in (pg, my):
        for exc in (ConnectionResetError(), BrokenPipeError(), TimeoutError()):
            assert d.is_transient(exc), (d.name, exc)
    assert my.is_transient(pymysql.err.OperationalError(2013, "Lost connection to server"))
    assert not my.is_transient(pymysql.err.ProgrammingError(1064, "You have an error"))


def test_postgres_columns_hold_mysql_values_exactly():
    from sinks.jdbc.types import postgres_type

    # a MySQL TIME is a signed duration up to 838:59:59: interval, not time
    assert postgres_type(T("TIME(3)")) == "interval(3)"
    # char(n) pads with blanks that MySQL strips: varchar(n) keeps the value
    assert postgres_type(T("CHAR(10)")) == "varchar(10)"
    assert postgres_type(T("JSON")) == "jsonb"
    assert postgres_type(T("JSON"), "json") == "json"
    pg = PostgresDialect(JdbcSinkConfig(url="postgresql://h/db").target(), 1, "json")
    assert pg.column_type(T("JSON"), False) == "json"
    assert JdbcSinkConfig.model_validate({"url": "postgresql://h/db", "json-type": "json"}
                                         ).json_type == "json"
    with pytest.raises(ValidationError):
        JdbcSinkConfig.model_validate({"url": "postgresql://h/db", "json-type": "text"})
