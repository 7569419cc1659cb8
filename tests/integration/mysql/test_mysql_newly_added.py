"""``snapshot-newly-added-tables``: restarted with a pattern that now matches a table the
checkpoint did not capture, the source snapshots that table (lock-free chunks) while the binlog
goes on streaming the others, then folds it into the binlog: its existing rows and every later
change arrive exactly once, also across kill -9.  Without the option such a table is captured
from the binlog position on only."""
from __future__ import annotations

import logging
import random
import shutil
import threading
import time
from typing import Any

import pymysql
import pytest

from tests.integration.mysql.helpers import (Running, committed, exactly_once, new_database, replay,
                                             source_config, table_rows)
from tests.integration.mysql.test_mysql_kill9 import PIPELINE, lake, run_until
from tests.killing import crash_at, kill_at_random

pytestmark = [pytest.mark.integration, pytest.mark.mysql]

COLUMNS = "(id INT PRIMARY KEY, v INT NOT NULL, s VARCHAR(20))"


def _tables(server, rows: dict[str, int]) -> tuple[str, Any, list[str]]:
    """A fresh database with tables ``t1``, ``t2``, ... of ``rows[name]`` rows each: (db, an
    open connection, the table ids)."""
    db = new_database(server)
    conn = server.connect()
    ids = [f"{db}.{name}" for name in rows]
    with conn.cursor() as cur:
        for t, n in zip(ids, rows.values()):
            cur.execute(f"CREATE TABLE {t} {COLUMNS}")
            for start in range(0, n, 10_000):
                cur.executemany(f"INSERT INTO {t} VALUES (%s, 0, %s)",
                                [(i, f"row {i}") for i in range(start, min(n, start + 10_000))])
    return db, conn, ids


def _writes(server, tables: list[str], stop: threading.Event, seed: int, base: int) -> None:
    """Inserts of new keys, +1 updates and deletes, alone and in small transactions."""
    rnd = random.Random(seed)
    conn = server.connect()
    n = 0
    with conn.cursor() as cur:
        while not stop.is_set():
            conn.begin()
            try:
                for _ in range(rnd.choice((1, 1, 3))):
                    t = rnd.choice(tables)
                    op = rnd.random()
                    if op < 0.3:
                        cur.execute(f"INSERT INTO {t} VALUES (%s, 0, 'new')", (base + n,))
                        n += 1
                    elif op < 0.9:
                        cur.execute(f"UPDATE {t} SET v = v + 1 WHERE id = %s", (rnd.randrange(3000),))
                    else:
                        cur.execute(f"DELETE FROM {t} WHERE id = %s", (rnd.randrange(3000),))
                conn.commit()
            except pymysql.err.OperationalError as exc:
                if exc.args[0] != 1213:   # the other writer's transaction took the locks first
                    raise
                conn.rollback()
    conn.close()


def test_newly_added_table_snapshotted_while_the_binlog_streams(mysql_server):
    db, conn, (t1, t2) = _tables(mysql_server, {"t1": 2000, "t2": 3000})
    first = source_config(mysql_server, db, tables=[f"{db}\\.t1"], **{"chunk-size": 300})
    stop = threading.Event()
    with Running(first) as run:
        run.wait_for(lambda ev: len(ev) >= 2000)
        with conn.cursor() as cur:
            cur.execute(f"UPDATE {t1} SET v = v + 1 WHERE id = 1")
            cur.execute(f"UPDATE {t2} SET v = v + 1 WHERE id = 1")   # not captured yet
        run.wait_for(lambda ev: len(ev) >= 2001)
    assert not [e for e in committed(run.store) if e[0] == t2]
    with conn.cursor() as cur:   # while the pipeline is down
        cur.execute(f"UPDATE {t1} SET v = v + 1 WHERE id < 100")
        cur.execute(f"UPDATE {t2} SET v = v + 1 WHERE id < 100")
    second = source_config(mysql_server, db, tables=[f"{db}\\.t(1|2)"], **{
        "chunk-size": 100, "snapshot-newly-added-tables": True})
    writers = [threading.Thread(target=_writes, args=(mysql_server, [t1, t2], stop, s, 1_000_000 * (s + 1)))
               for s in range(2)]
    for w in writers:
        w.start()
    with Running(second, state_dir=run.dir, store=run.store) as again:
        again.wait_for(lambda ev: any(e[0] == t2 and e[1] == "r" for e in ev), timeout=60)
        time.sleep(2.0)
        stop.set()
        for w in writers:
            w.join()
        with conn.cursor() as cur:
            cur.execute(f"INSERT INTO {t1} VALUES (-1, 0, 'last')")
            cur.execute(f"INSERT INTO {t2} VALUES (-1, 0, 'last')")
        expected = {**table_rows(mysql_server, db, "t1", second), **table_rows(mysql_server, db, "t2", second)}
        events = again.wait_for(lambda ev: replay(ev) == expected, timeout=90)
        time.sleep(1.0)   # anything repeated would show now
        events = committed(again.store)
    assert replay(events) == expected
    s1, s2 = exactly_once(events, t1), exactly_once(events, t2)
    assert len(s1) == sum(1 for k in expected if k[0] == t1) and len(s2) == sum(1 for k in expected if k[0] == t2)
    ops2 = {e[1] for e in events if e[0] == t2}
    assert {"r", "c", "u"} <= ops2, ops2


def test_without_the_option_new_tables_start_at_the_binlog_position(mysql_server, caplog):
    db, conn, (t1, t2) = _tables(mysql_server, {"t1": 10, "t2": 10})
    with Running(source_config(mysql_server, db, tables=[f"{db}\\.t1"])) as run:
        run.wait_for(lambda ev: len(ev) >= 10)
        # in the binlog phase before the restart (stopped while the snapshot still ends,
        # t2 would rightly join that snapshot)
        with conn.cursor() as cur:
            cur.execute(f"UPDATE {t1} SET v = v + 1 WHERE id = 0")
        run.wait_for(lambda ev: any(e[0] == t1 and e[1] == "u" for e in ev))
    caplog.set_level(logging.WARNING, logger="hub.sources.mysql")
    second = source_config(mysql_server, db, tables=[f"{db}\\.t(1|2)"])
    with Running(second, state_dir=run.dir, store=run.store) as again:
        time.sleep(1.0)
        with conn.cursor() as cur:
            cur.execute(f"UPDATE {t2} SET v = v + 1 WHERE id = 3")
        events = again.wait_for(lambda ev: any(e[0] == t2 for e in ev))
    assert [e for e in events if e[0] == t2] == [(t2, "u", 3, 1, "row 3")]
    warnings = [r.getMessage() for r in caplog.records if t2 in r.getMessage()]
    assert len(warnings) == 1 and "snapshot-newly-added-tables" in warnings[0], warnings


def _pipeline(path, server, db, tables: str, extra: str = "", chunk: int = 100) -> str:
    text = PIPELINE.format(dir=path, connection=server.source_toml(), db=db, mode="initial",
                           extra=extra, chunk=chunk)
    text = text.replace(f'tables = ["{db}\\\\..*"]', f'tables = ["{db}\\\\.{tables}"]')
    assert tables in text
    (path / "pipeline.toml").write_text(text)
    return str(path / "pipeline.toml")


def test_kill_9_during_the_newly_added_snapshot(tmp_path, mysql_server):
    db, conn, (t1, t2) = _tables(mysql_server, {"t1": 3000, "t2": 30_000})
    base = tmp_path / "base"
    base.mkdir()
    run_until(_pipeline(base, mysql_server, db, "t1", chunk=1000), base, 3000)
    # the binlog the resumed runs read: changes to both tables while the pipeline was down
    changes = 0
    with conn.cursor() as cur:
        for b in range(20):
            conn.begin()
            changes += cur.execute(f"UPDATE {t1} SET v = v + 1 WHERE id BETWEEN %s AND %s", (b * 100, b * 100 + 49))
            cur.execute(f"UPDATE {t2} SET v = v + 1 WHERE id BETWEEN %s AND %s", (b * 1000, b * 1000 + 49))
            changes += cur.execute(f"INSERT INTO {t1} VALUES (%s, 0, 'new')", (10_000 + b,))
            cur.execute(f"DELETE FROM {t2} WHERE id = %s", (b * 1000 + 7,))
            conn.commit()
    expected_total = sum(lake(base).values()) + changes + 30_000 - 20
    extra = "snapshot-newly-added-tables = true"
    ref, killed = tmp_path / "ref", tmp_path / "killed"
    shutil.copytree(base, ref)
    shutil.copytree(base, killed)
    run_until(_pipeline(ref, mysql_server, db, "t(1|2)", extra), ref, expected_total)
    expected = lake(ref)
    assert sum(expected.values()) == expected_total and max(expected.values()) == 1
    path = _pipeline(killed, mysql_server, db, "t(1|2)", extra)
    from runtime.checkpoint.storage import CheckpointStorage

    resumed_at = CheckpointStorage(str(killed / "state")).completed_ids()[-1]
    crash_at(path, "checkpoint-stored", resumed_at + 3)
    state = CheckpointStorage(str(killed / "state")).latest().data["source"]
    assert state["enumerator"]["adding"], "the crash did not hit the newly-added snapshot"
    kill_at_random(path, str(killed / "state"), times=3, between=(0.0, 0.5), min_kills=1)
    err = run_until(path, killed, expected_total)
    assert "resuming from checkpoint" in err
    assert lake(killed) == expected


def test_pattern_changed_in_the_middle_of_the_initial_snapshot(mysql_server):
    """Stopped while the first snapshot runs, restarted with t1 left out and t2 added: t2
    joins that snapshot, t1 leaves it."""
    db, conn, (t1, t2, t3) = _tables(mysql_server, {"t1": 5000, "t2": 500, "t3": 5000})
    first = source_config(mysql_server, db, tables=[f"{db}\\.t(1|3)"], **{
        "chunk-size": 50, "startup-mode": "initial-only"})
    with Running(first, parallelism=1, interval_s=0.05) as run:
        run.wait_for(lambda ev: len(ev) >= 300)
    before = committed(run.store)
    assert len(before) < 10_000, "the snapshot ended before the stop: nothing to test"
    second = source_config(mysql_server, db, tables=[f"{db}\\.t(2|3)"], **{
        "chunk-size": 50, "startup-mode": "initial-only"})
    with Running(second, state_dir=run.dir, store=run.store) as again:
        again.thread.join(120)
    assert again.error is None and again.result.status == "finished"
    after = committed(again.store)[len(before):]
    assert not [e for e in after if e[0] == t1]
    exactly_once(before + after, t3)
    assert len(exactly_once(after, t2)) == 500
    assert len(exactly_once(before + after, t3)) == 5000
