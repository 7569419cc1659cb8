"""Table names are data: a dot inside a database or table name never moves rows to another
table.  ``shop`.`a.b`` and ``shop.a`.`b`` were both ``shop.a.b`` once."""
from __future__ import annotations

import pytest

from runtime.schema import split_table_id, table_id
from tests.integration.mysql.helpers import (Running, data_only, new_database,
                                             record_schema_changes, source_config)

pytestmark = [pytest.mark.integration, pytest.mark.mysql]


def test_dots_and_quotes_in_names_keep_their_parts(mysql_server, monkeypatch):
    record_schema_changes(monkeypatch)
    db = new_database(mysql_server)
    dotted_db = f"{db}.a"
    conn = mysql_server.connect()
    with conn.cursor() as cur:
        cur.execute(f"CREATE DATABASE `{dotted_db}`")
        cur.execute(f"CREATE TABLE `{db}`.`a.b` (id INT PRIMARY KEY, v VARCHAR(10))")
        cur.execute(f"CREATE TABLE `{dotted_db}`.`b` (id INT PRIMARY KEY, v VARCHAR(10))")
        cur.execute(f"CREATE TABLE `{db}`.`q\"x; y` (id INT PRIMARY KEY, v VARCHAR(10))")
        cur.execute(f"INSERT INTO `{db}`.`a.b` VALUES (1, 'in a.b')")
        cur.execute(f"INSERT INTO `{dotted_db}`.`b` VALUES (1, 'in b')")
        cur.execute(f"INSERT INTO `{db}`.`q\"x; y` VALUES (1, 'quoted')")
    in_ab, in_b, quoted = (table_id(db, "a.b"), table_id(dotted_db, "b"),
                           table_id(db, 'q"x; y'))
    assert len({in_ab, in_b, quoted}) == 3
    config = source_config(mysql_server, db, tables=[f'"?{db}.*'])
    try:
        with Running(config) as run:
            run.wait_for(lambda ev: len(data_only(ev)) >= 3)
            with conn.cursor() as cur:
                cur.execute(f"INSERT INTO `{db}`.`a.b` VALUES (2, 'binlog a.b')")
                cur.execute(f"INSERT INTO `{dotted_db}`.`b` VALUES (2, 'binlog b')")
                cur.execute(f"ALTER TABLE `{db}`.`a.b` ADD COLUMN w INT")
                cur.execute(f"INSERT INTO `{db}`.`a.b` VALUES (3, 'after ddl', 7)")
                cur.execute(f"UPDATE `{db}`.`q\"x; y` SET v = 'updated' WHERE id = 1")
            events = run.wait_for(lambda ev: len(data_only(ev)) >= 7)
    finally:
        with conn.cursor() as cur:
            cur.execute(f"DROP DATABASE `{dotted_db}`")
        conn.close()
    data = data_only(events)
    assert (in_ab, "r", 1, "in a.b") in data
    assert (in_b, "r", 1, "in b") in data
    assert (quoted, "r", 1, "quoted") in data
    assert (in_ab, "c", 2, "binlog a.b") in data
    assert (in_b, "c", 2, "binlog b") in data
    assert (in_ab, "c", 3, "after ddl", 7) in data
    assert (quoted, "u", 1, "updated") in data
    assert {e[0] for e in data} == {in_ab, in_b, quoted}
    schema = [e for e in events if e[0] == "schema"]
    assert {e[2] for e in schema} <= {in_ab, in_b, quoted}
    assert [e[2] for e in schema if e[1] == "add_column"] == [in_ab]
    assert split_table_id(in_ab) == (db, "a.b") and split_table_id(in_b) == (dotted_db, "b")
