"""DDL mid-stream becomes schema-change events in order with the data; a table created after
the start is captured; a binlog position that is gone gives a clear error."""
from __future__ import annotations

import pytest

from tests.integration.mysql.helpers import Running, new_database, source_config

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
    db = new_database(mysql_server)
    config = source_config(mysql_server, db, **{
        "startup-mode": "specific-offset", "startup-specific-offset-file": "mysql-bin.999999",
        "startup-specific-offset-pos": 4})
    with Running(config) as run:
        run.thread.join(30)
    assert run.error is not None
    assert "gone from the server" in str(run.error) and "--fresh" in str(run.error)
