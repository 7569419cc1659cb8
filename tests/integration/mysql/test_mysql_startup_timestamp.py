"""``startup-mode = "timestamp"``: the first change read is the first one committed at or after
``startup-timestamp-millis`` (the binlog file found by a binary search over the files' first
events, several files on either side of the timestamp), none before it."""
from __future__ import annotations

import time

import pytest

from tests.integration.mysql.helpers import Running, new_database, source_config

pytestmark = [pytest.mark.integration, pytest.mark.mysql]


def _next_second() -> int:
    """Wait into the next wall-clock second; its start in epoch milliseconds (binlog times are
    whole seconds)."""
    now = time.time()
    time.sleep(int(now) + 1 - now + 0.05)
    return int(time.time()) * 1000


def test_timestamp_startup_reads_from_the_first_change_at_or_after_it(mysql_server):
    db = new_database(mysql_server)
    table = f"{db}.t"
    conn = mysql_server.connect()
    with conn.cursor() as cur:
        cur.execute(f"CREATE TABLE {table} (id INT PRIMARY KEY, v INT)")
        for i in range(3):   # before: in three binlog files
            cur.executemany(f"INSERT INTO {table} VALUES (%s, 0)", [(i * 10 + j,) for j in range(5)])
            cur.execute("FLUSH BINARY LOGS")
        _next_second()
        cur.execute(f"INSERT INTO {table} VALUES (100, 0)")   # in the second before the timestamp
        ts = _next_second()
        cur.execute(f"INSERT INTO {table} VALUES (200, 0)")   # after: in three files as well
        cur.execute(f"UPDATE {table} SET v = 1 WHERE id = 0")
        cur.execute("FLUSH BINARY LOGS")
        conn.begin()
        cur.execute(f"DELETE FROM {table} WHERE id = 10")
        cur.execute(f"INSERT INTO {table} VALUES (201, 0)")
        conn.commit()
        cur.execute("FLUSH BINARY LOGS")
        cur.execute(f"INSERT INTO {table} VALUES (202, 0)")
    config = source_config(mysql_server, db, **{"startup-mode": "timestamp",
                                                "startup-timestamp-millis": ts})
    want = [(table, "c", 200, 0), (table, "u", 0, 1), (table, "d", 10, 0), (table, "c", 201, 0),
            (table, "c", 202, 0)]
    with Running(config, parallelism=1) as run:
        events = run.wait_for(lambda ev: len(ev) >= len(want))
        with conn.cursor() as cur:
            cur.execute(f"INSERT INTO {table} VALUES (203, 0)")
        events = run.wait_for(lambda ev: len(ev) >= len(want) + 1)
    assert events == want + [(table, "c", 203, 0)]
