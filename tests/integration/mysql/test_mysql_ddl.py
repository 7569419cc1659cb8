"""DDL mid-stream becomes schema-change events in order with the data; a table created after
the start is captured; a binlog position that is gone gives a clear error."""
from __future__ import annotations

import time

import pytest

from sources.mysql.protocol import BinlogPurgedError
from tests.integration.mysql.helpers import (Running, committed, data_only, new_database,
                                             record_schema_changes, source_config)

pytestmark = [pytest.mark.integration, pytest.mark.mysql]


def test_ddl_mid_stream_and_new_table(mysql_server, monkeypatch):
    from tests.conformance import harness

    seen: list = []
    # the reference writer ignores schema changes; record them in order with the data
    monkeypatch.setattr(harness._CollectWriter, "write_schema_change",
                        lambda self, change: seen.append((change.kind, change.table, change.details)),
                        raising=False)
    db = new_database(mysql_server)
    conn = mysql_server.connect()
    with conn.cursor() as cur:
        cur.execute(f"CREATE TABLE {db}.a (id INT PRIMARY KEY, v INT)")
        cur.execute(f"INSERT INTO {db}.a VALUES (1, 1)")
    with Running(source_config(mysql_server, db)) as run:
        run.wait_for(lambda ev: len(ev) >= 1)
        with conn.cursor() as cur:
            cur.execute(f"ALTER TABLE {db}.a ADD COLUMN s VARCHAR(10)")
            cur.execute(f"INSERT INTO {db}.a VALUES (2, 2, 'two')")
        # (schemas come from the server when a DDL is read: give each DDL time to be read
        # before the next one of the same table, see the report's known limits)
        run.wait_for(lambda ev: len(ev) >= 2)
        with conn.cursor() as cur:
            cur.execute(f"ALTER TABLE {db}.a RENAME COLUMN s TO label")
            cur.execute(f"CREATE TABLE {db}.b (id INT PRIMARY KEY, x VARCHAR(5))")
            cur.execute(f"INSERT INTO {db}.b VALUES (1, 'new')")
        run.wait_for(lambda ev: len(ev) >= 3)
        with conn.cursor() as cur:
            cur.execute(f"TRUNCATE TABLE {db}.b")
            cur.execute(f"DROP TABLE {db}.b")
            cur.execute(f"INSERT INTO {db}.a VALUES (3, 3, 'three')")
        events = run.wait_for(lambda ev: len(ev) >= 4)
    assert (f"{db}.a", "c", 2, 2, "two") in events
    assert (f"{db}.a", "c", 3, 3, "three") in events
    assert (f"{db}.b", "c", 1, "new") in events
    kinds = [(k, t) for k, t, _ in seen]
    assert kinds.index(("add_column", f"{db}.a")) < kinds.index(("rename_column", f"{db}.a"))
    assert kinds.index(("create_table", f"{db}.b")) < kinds.index(("truncate_table", f"{db}.b")) \
        < kinds.index(("drop_table", f"{db}.b"))
    assert ("rename_column", f"{db}.a", {"old": "s", "new": "label"}) in seen


def test_purged_binlog_gives_a_clear_error(mysql_server):
    """The position is gone (purged, RESET MASTER, another server): one line naming it, with
    the complete remedy (empty or drop the target tables, then --fresh)."""
    db = new_database(mysql_server)
    config = source_config(mysql_server, db, **{
        "startup-mode": "specific-offset", "startup-specific-offset-file": "mysql-bin.999999",
        "startup-specific-offset-pos": 4})
    with Running(config) as run:
        run.thread.join(30)
    assert isinstance(run.error, BinlogPurgedError), run.error
    line = str(run.error)
    assert "\n" not in line
    assert "mysql-bin.999999:4" in line and f"{mysql_server.host}:{mysql_server.port}" in line
    assert "gone from" in line and "--fresh" in line
    # the whole remedy: a new snapshot can't delete in the target what the source deleted
    assert "empty" in line and "drop the target tables" in line
    assert "deleted at the source" in line


def test_reader_behind_several_ddls_decodes_each_row_with_its_schema(mysql_server, monkeypatch):
    """Stopped, then ADD COLUMN, insert, update, DROP + ADD COLUMN, insert, restart: every row
    comes with the columns of its time and the schema changes in between, in order (the
    server's catalog only knows the last schema: the table maps' metadata tells the rest)."""
    record_schema_changes(monkeypatch)
    db = new_database(mysql_server)
    conn = mysql_server.connect()
    with conn.cursor() as cur:
        # what the docs ask for (the throwaway server starts so; a docker-compose one may not)
        cur.execute("SELECT @@global.binlog_row_metadata")
        was = cur.fetchone()[0]
        cur.execute("SET GLOBAL binlog_row_metadata = 'FULL'")
        cur.execute(f"CREATE TABLE {db}.a (id INT PRIMARY KEY, v INT)")
        cur.execute(f"INSERT INTO {db}.a VALUES (1, 10)")
    try:
        _lagging(mysql_server, conn, db)
    finally:
        with conn.cursor() as cur:
            cur.execute("SET GLOBAL binlog_row_metadata = %s", (was,))


def _lagging(mysql_server, conn, db):
    config = source_config(mysql_server, db)
    with Running(config) as first:
        first.wait_for(lambda ev: len(data_only(ev)) >= 1)
    with conn.cursor() as cur:
        cur.execute(f"ALTER TABLE {db}.a ADD COLUMN s VARCHAR(10)")
        cur.execute(f"INSERT INTO {db}.a VALUES (2, 20, 'two')")
        cur.execute(f"UPDATE {db}.a SET s = 'one' WHERE id = 1")
        cur.execute(f"ALTER TABLE {db}.a DROP COLUMN v, ADD COLUMN n BIGINT NOT NULL DEFAULT 7")
        cur.execute(f"INSERT INTO {db}.a VALUES (3, 'three', 33)")
        cur.execute(f"ALTER TABLE {db}.a MODIFY COLUMN s VARCHAR(40)")
        cur.execute(f"INSERT INTO {db}.a VALUES (4, 'a longer text than ten', 44)")
    with Running(config, state_dir=first.dir, store=first.store) as run:
        events = run.wait_for(lambda ev: len(data_only(ev)) >= 5)
        time.sleep(0.5)
        events = committed(run.store)
    t = f"{db}.a"
    tail = [e for e in events[events.index((t, "r", 1, 10)) + 1:]
            if e[0] == t or e[:1] == ("schema",) and e[2] == t]
    assert tail == [
        ("schema", "add_column", t, (("column", "s"),), ("id", "v", "s")),
        (t, "c", 2, 20, "two"),
        (t, "u", 1, 10, "one"),
        ("schema", "drop_column", t, (("column", "v"),), ("id", "s", "n")),
        ("schema", "add_column", t, (("column", "n"),), ("id", "s", "n")),
        (t, "c", 3, "three", 33),
        ("schema", "alter_column_type", t, (("column", "s"),), ("id", "s", "n")),
        (t, "c", 4, "a longer text than ten", 44),
    ], tail
