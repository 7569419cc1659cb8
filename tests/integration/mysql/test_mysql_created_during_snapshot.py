"""Tables that appear, disappear or move while the initial snapshot runs.

The binlog split starts where the snapshot started (before the tables were listed), so a table
matching ``tables`` that is created during the snapshot is followed from its CREATE: none of
its rows is lost.  Tables the snapshot reads keep being filtered per chunk HIGH, so nothing is
emitted twice.  A table dropped or renamed during the snapshot doesn't stop the pipeline.

The writes that used to be lost happen between the listing of the tables and the first chunk's
HIGH: the enumerator's ``start`` is wrapped to make them right after it lists the tables (a
real server, real DDL and DML; only the moment is forced)."""
from __future__ import annotations

import random
import threading
import time

import pytest

from runtime.errors import TerminalError
from sources.mysql.enumerator import MySqlEnumerator
from tests.integration.mysql.helpers import (Running, committed, data_only, exactly_once,
                                             new_database, record_schema_changes, replay,
                                             source_config, table_rows)

pytestmark = [pytest.mark.integration, pytest.mark.mysql]

COLUMNS = "(id INT PRIMARY KEY, v INT NOT NULL, s VARCHAR(20))"


def _after_listing(monkeypatch, action) -> threading.Event:
    """Run ``action()`` once, right after the enumerator of a fresh pipeline listed the tables;
    the event is set once it ran."""
    original = MySqlEnumerator.start
    done = threading.Event()

    def start(self):
        original(self)
        if not self.restored and not done.is_set():
            action()
            done.set()

    monkeypatch.setattr(MySqlEnumerator, "start", start)
    return done


def _fill(conn, table: str, n: int) -> None:
    with conn.cursor() as cur:
        cur.execute(f"CREATE TABLE {table} {COLUMNS}")
        for start in range(0, n, 10_000):
            cur.executemany(f"INSERT INTO {table} VALUES (%s, 0, %s)",
                            [(i, f"row {i}") for i in range(start, min(n, start + 10_000))])


def _churn(cur, table: str, base: int, rnd: random.Random) -> None:
    """Inserts of new keys, +1 updates of existing ones, deletes (``exactly_once`` checks the
    +1 steps)."""
    cur.executemany(f"INSERT INTO {table} VALUES (%s, 0, 'new')", [(base + i,) for i in range(20)])
    for _ in range(10):
        cur.execute(f"UPDATE {table} SET v = v + 1 WHERE id = %s", (base + rnd.randrange(20),))
    cur.execute(f"DELETE FROM {table} WHERE id = %s", (base + rnd.randrange(20),))


def _writer(server, db: str, big: str, stop: threading.Event) -> None:
    """During the snapshot: creates matching tables one after the other and writes to them
    and to the snapshotted table."""
    rnd = random.Random(11)
    conn = server.connect()
    n = 0
    with conn.cursor() as cur:
        while not stop.is_set():
            t = f"{db}.later{n}"
            cur.execute(f"CREATE TABLE {t} {COLUMNS}")
            _churn(cur, t, 0, rnd)
            conn.begin()
            cur.execute(f"UPDATE {big} SET v = v + 1 WHERE id = %s", (rnd.randrange(20_000),))
            cur.execute(f"INSERT INTO {big} VALUES (%s, 0, 'w')", (1_000_000 + n,))
            conn.commit()
            n += 1
            time.sleep(0.05)
    conn.close()


def _tables_now(server, db: str) -> list[str]:
    conn = server.connect()
    with conn.cursor() as cur:
        cur.execute("SELECT table_name FROM information_schema.tables WHERE table_schema = %s", (db,))
        names = sorted(r[0] for r in cur.fetchall())
    conn.close()
    return names


@pytest.mark.parametrize("newly_added", [False, True], ids=["plain", "snapshot-newly-added"])
def test_table_created_during_the_snapshot_loses_nothing(mysql_server, monkeypatch, newly_added):
    db = new_database(mysql_server)
    big = f"{db}.big"
    conn = mysql_server.connect()
    _fill(conn, big, 20_000)
    rnd = random.Random(5)

    def right_after_listing() -> None:
        with conn.cursor() as cur:
            cur.execute(f"CREATE TABLE {db}.fresh {COLUMNS}")
            _churn(cur, f"{db}.fresh", 0, rnd)
            cur.execute(f"UPDATE {big} SET v = v + 1 WHERE id < 50")
            cur.execute(f"DELETE FROM {big} WHERE id BETWEEN 100 AND 110")
            cur.execute(f"INSERT INTO {big} VALUES (-5, 0, 'early')")

    listed = _after_listing(monkeypatch, right_after_listing)
    config = source_config(mysql_server, db, **{"chunk-size": 200,
                                                 "snapshot-newly-added-tables": newly_added})
    stop = threading.Event()
    writer = threading.Thread(target=_writer, args=(mysql_server, db, big, stop))
    with Running(config) as run:
        assert listed.wait(30)
        writer.start()
        run.wait_for(lambda ev: sum(1 for e in ev if e[0] == big and e[1] == "r") >= 5000)
        stop.set()
        writer.join()
        with conn.cursor() as cur:
            cur.execute(f"UPDATE {db}.fresh SET v = v + 1 WHERE id = 3")
            cur.execute(f"INSERT INTO {big} VALUES (-1, 0, 'last')")
        names = _tables_now(mysql_server, db)
        assert len(names) >= 4, names       # big, fresh and some later<n>
        expected = {}
        for name in names:
            expected.update(table_rows(mysql_server, db, name, config))
        run.wait_for(lambda ev: replay(ev) == expected, timeout=60)
        time.sleep(1.0)   # anything repeated would show now
        events = committed(run.store)
    assert replay(events) == expected
    for name in names:
        state = exactly_once(events, f"{db}.{name}")
        assert len(state) == sum(1 for k in expected if k[0] == f"{db}.{name}")
    fresh_ops = {e[1] for e in events if e[0] == f"{db}.fresh"}
    assert fresh_ops <= {"r", "c", "u", "d"} and fresh_ops & {"c", "r"}


def test_table_dropped_or_renamed_during_the_snapshot(mysql_server, monkeypatch):
    """Dropped: its chunks not read yet are empty, its changes until the DROP come from the
    binlog, then ``drop_table``.  Renamed into the pattern: followed from the RENAME on, as
    ``drop_table`` of the old name and ``create_table`` of the new one (its earlier rows
    only with ``snapshot-newly-added-tables``, see the next test)."""
    record_schema_changes(monkeypatch)
    db = new_database(mysql_server)
    conn = mysql_server.connect()
    for name in ("big", "gone", "moved"):
        _fill(conn, f"{db}.{name}", 4000)

    def right_after_listing() -> None:
        with conn.cursor() as cur:
            cur.execute(f"UPDATE {db}.gone SET v = v + 1 WHERE id < 5")
            cur.execute(f"DROP TABLE {db}.gone")
            cur.execute(f"RENAME TABLE {db}.moved TO {db}.moved2")
            cur.execute(f"UPDATE {db}.moved2 SET v = v + 1 WHERE id < 3")

    listed = _after_listing(monkeypatch, right_after_listing)
    config = source_config(mysql_server, db, **{"chunk-size": 100, "include-schema-changes": True})
    with Running(config) as run:
        assert listed.wait(30)
        with conn.cursor() as cur:
            cur.execute(f"INSERT INTO {db}.big VALUES (-1, 0, 'last')")
        expected = table_rows(mysql_server, db, "big", config)
        run.wait_for(lambda ev: {k: v for k, v in replay(data_only(ev)).items()
                                 if k[0] == f"{db}.big"} == expected, timeout=60)
        # the DROP and the RENAME are two transactions: a checkpoint may come between them
        run.wait_for(lambda ev: any(e[:3] == ("schema", "drop_table", f"{db}.gone") for e in ev)
                     and sum(1 for e in ev if e[0] == f"{db}.moved2") >= 3)
        events = committed(run.store)
    assert run.error is None
    gone = [e for e in data_only(events) if e[0] == f"{db}.gone"]
    assert not [e for e in gone if e[1] == "r"], "a chunk of the dropped table was read"
    assert sorted(e[2] for e in gone if e[1] == "u") == [0, 1, 2, 3, 4]
    schema = [e[1:3] for e in events if e[0] == "schema"]
    assert ("drop_table", f"{db}.moved") in schema and ("create_table", f"{db}.moved2") in schema
    moved2 = [e for e in data_only(events) if e[0] == f"{db}.moved2"]
    assert sorted((e[1], e[2]) for e in moved2) == [("u", 0), ("u", 1), ("u", 2)]


def test_renamed_during_the_snapshot_snapshotted_with_newly_added(mysql_server, monkeypatch):
    db = new_database(mysql_server)
    conn = mysql_server.connect()
    for name in ("big", "moved"):
        _fill(conn, f"{db}.{name}", 3000)

    def right_after_listing() -> None:
        with conn.cursor() as cur:
            cur.execute(f"RENAME TABLE {db}.moved TO {db}.moved2")
            cur.execute(f"UPDATE {db}.moved2 SET v = v + 1 WHERE id < 3")

    listed = _after_listing(monkeypatch, right_after_listing)
    config = source_config(mysql_server, db, **{"chunk-size": 100,
                                                 "snapshot-newly-added-tables": True})
    with Running(config) as run:
        assert listed.wait(30)
        with conn.cursor() as cur:
            cur.execute(f"UPDATE {db}.moved2 SET v = v + 1 WHERE id = 7")
        expected = {**table_rows(mysql_server, db, "big", config),
                    **table_rows(mysql_server, db, "moved2", config)}
        events = run.wait_for(lambda ev: {k: v for k, v in replay(ev).items()
                                          if not k[0].endswith(".moved")} == expected, timeout=60)
    assert len(exactly_once(events, f"{db}.moved2")) == 3000



def test_column_dropped_during_the_snapshot_stops_with_the_remedy(mysql_server, monkeypatch):
    """A snapshot reads the columns a table had when it was listed: a column dropped before
    its chunks are read stops the pipeline with one line naming the table and what to do,
    not a bare server error."""
    db = new_database(mysql_server)
    conn = mysql_server.connect()
    _fill(conn, f"{db}.big", 3000)

    def right_after_listing() -> None:
        with conn.cursor() as cur:
            cur.execute(f"ALTER TABLE {db}.big DROP COLUMN s")

    listed = _after_listing(monkeypatch, right_after_listing)
    config = source_config(mysql_server, db, **{"chunk-size": 100})
    with Running(config) as run, pytest.raises(TerminalError) as err:
        assert listed.wait(30)
        run.wait_for(lambda ev: False, timeout=30)
    text = str(err.value)
    assert f"{db}.big" in text and "dropped or renamed while the table was being snapshotted" in text
    assert "--fresh" in text and "\n" not in text
