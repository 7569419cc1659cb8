"""Snapshot with concurrent writes, then streaming: the replayed events equal the table."""
from __future__ import annotations

import random
import threading
import time

import pytest

from tests.integration.mysql.helpers import Running, new_database, replay, source_config, table_rows

pytestmark = [pytest.mark.integration, pytest.mark.mysql]


def _writes(server, db: str, stop: threading.Event, seed: int) -> int:
    rnd = random.Random(seed)
    conn = server.connect()
    n = 0
    with conn.cursor() as cur:
        while not stop.is_set():
            k = rnd.randrange(0, 30_000)
            op = rnd.random()
            if op < 0.4:
                cur.execute(f"INSERT INTO {db}.orders VALUES (%s, %s, %s, %s) ON DUPLICATE KEY "
                            "UPDATE qty = qty + 1", (k, rnd.randrange(100), f"w{n}", "1.50"))
            elif op < 0.8:
                cur.execute(f"UPDATE {db}.orders SET note = %s, qty = qty + 1 WHERE id = %s", (f"u{n}", k))
            else:
                cur.execute(f"DELETE FROM {db}.orders WHERE id = %s", (k,))
            n += 1
    conn.close()
    return n


def test_snapshot_with_concurrent_writes_then_stream_equals_table(mysql_server):
    db = new_database(mysql_server)
    conn = mysql_server.connect()
    with conn.cursor() as cur:
        cur.execute(f"CREATE TABLE {db}.orders (id BIGINT PRIMARY KEY, qty INT, note VARCHAR(40), "
                    "price DECIMAL(10,2))")
        cur.executemany(f"INSERT INTO {db}.orders VALUES (%s, %s, %s, %s)",
                        [(i, i % 7, f"n{i}", f"{i / 100:.2f}") for i in range(0, 20_000, 2)])
    config = source_config(mysql_server, db, **{"chunk-size": 500})
    stop = threading.Event()
    writer = threading.Thread(target=_writes, args=(mysql_server, db, stop, 7))
    with Running(config) as run:
        writer.start()
        time.sleep(3.0)
        stop.set()
        writer.join()
        with conn.cursor() as cur:
            cur.execute(f"INSERT INTO {db}.orders VALUES (-1, 0, 'last', 0)")
        expected = table_rows(mysql_server, db, "orders", config)
        events = run.wait_for(lambda ev: replay(ev) == expected, timeout=60)
    ops = {e[1] for e in events}
    assert {"r", "c", "u", "d"} <= ops, ops
    assert replay(events) == expected


def test_initial_only_ends_after_snapshot(mysql_server):
    db = new_database(mysql_server)
    conn = mysql_server.connect()
    with conn.cursor() as cur:
        cur.execute(f"CREATE TABLE {db}.a (id INT PRIMARY KEY, v VARCHAR(10))")
        cur.execute(f"CREATE TABLE {db}.nokey (v INT)")
        cur.executemany(f"INSERT INTO {db}.a VALUES (%s, %s)", [(i, str(i)) for i in range(1234)])
        cur.executemany(f"INSERT INTO {db}.nokey VALUES (%s)", [(i,) for i in range(50)])
    config = source_config(mysql_server, db, **{"chunk-size": 100, "startup-mode": "initial-only",
                                                 "chunk-key-column": {f"{db}.nokey": "v"}})
    with Running(config) as run:
        run.thread.join(60)
    assert run.error is None and run.result.status == "finished"
    events = replay([e for e in run.store.rows().elements()])
    assert len(events) == 1284


def test_table_without_key_needs_chunk_key_column(mysql_server):
    db = new_database(mysql_server)
    conn = mysql_server.connect()
    with conn.cursor() as cur:
        cur.execute(f"CREATE TABLE {db}.nokey (v INT)")
    with Running(source_config(mysql_server, db, **{"startup-mode": "initial-only"})) as run:
        run.thread.join(30)
    assert run.error is not None and "chunk-key-column" in str(run.error)
