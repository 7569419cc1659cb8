"""Exactly once across kill -9: ``hub run`` in a subprocess, killed mid-snapshot and
mid-binlog (at random moments and at the crash points between a durable checkpoint and its
commit), restarted, ends with the same lake as a run that never failed."""
from __future__ import annotations

import signal
import time
from collections import Counter

import pytest

from sources.mysql.dialect import detect
from tests.e2e.lake import lake_rows
from tests.integration.mysql.helpers import new_database
from tests.killing import crash_at, hub, kill_at_random, latest_checkpoint

pytestmark = [pytest.mark.integration, pytest.mark.mysql]

PIPELINE = """
[pipeline]
name = "mysql-kill"
parallelism = 2
[checkpoint]
interval = "150ms"
dir = "{dir}/state"
[source]
{connection}
tables = ["{db}\\\\..*"]
chunk-size = {chunk}
startup-mode = "{mode}"
heartbeat-interval = "200ms"
fetch-size = 500
{extra}
[sink]
type = "files"
path = "{dir}/lake"
format = "parquet"
"""


def pipeline(tmp, server, db, mode, extra="", chunk=1000):
    tmp.mkdir(parents=True, exist_ok=True)
    path = tmp / "pipeline.toml"
    path.write_text(PIPELINE.format(dir=tmp, connection=server.source_toml(), db=db, mode=mode, extra=extra,
                                    chunk=chunk))
    return str(path)


def lake(tmp) -> Counter:
    """Multiset of (db, table, op, row) over visible parquet files; ts_ms left out (snapshot
    reads carry the time they were read)."""
    return lake_rows(f"{tmp}/lake", drop=("ts_ms",))


def run_until(path, tmp, expected: int, timeout=90.0) -> str:
    """Run until the lake holds ``expected`` events and the run completed a checkpoint of its
    own (so it is up: a SIGTERM while it still starts would end it without its handler, when
    the killed runs had committed everything already), then a little longer (duplicates
    would show), then stop gracefully."""
    state = str(tmp / "state")
    before = latest_checkpoint(state)
    p = hub("run", path, "--no-progress")
    deadline = time.monotonic() + timeout
    while (sum(lake(tmp).values()) < expected or latest_checkpoint(state) <= before) \
            and time.monotonic() < deadline and p.poll() is None:
        time.sleep(0.2)
    time.sleep(1.0)
    if p.poll() is None:
        p.send_signal(signal.SIGTERM)
    _, err = p.communicate(timeout=60)
    assert p.returncode == 0, err
    return err


@pytest.fixture(scope="module")
def snapshot_db(mysql_server):
    db = new_database(mysql_server)
    conn = mysql_server.connect()
    with conn.cursor() as cur:
        cur.execute(f"CREATE TABLE {db}.big (id BIGINT PRIMARY KEY, v INT, s VARCHAR(40), "
                    "p DECIMAL(12,2))")
        for start in range(0, 120_000, 10_000):
            cur.executemany(f"INSERT INTO {db}.big VALUES (%s, %s, %s, %s)",
                            [(i, i % 97, f"row {i}", f"{i % 1000}.25") for i in range(start, start + 10_000)])
    return db


def test_kill_9_mid_snapshot(tmp_path, mysql_server, snapshot_db):
    ref = tmp_path / "ref"
    run_until(pipeline(ref, mysql_server, snapshot_db, "initial-only"), ref, 120_000)
    expected = lake(ref)
    assert sum(expected.values()) == 120_000 and max(expected.values()) == 1
    d = tmp_path / "killed"
    # small chunks: a snapshot long enough to be killed in the middle
    path = pipeline(d, mysql_server, snapshot_db, "initial-only", chunk=100)
    crash_at(path, "checkpoint-stored", 3)
    kill_at_random(path, str(d / "state"), times=3, between=(0.0, 0.6))
    err = run_until(path, d, 120_000)
    assert "resuming from checkpoint" in err
    assert lake(d) == expected


def _workload(server, db) -> int:
    """Transactions of inserts, updates (some changing the key) and deletes; returns the
    number of change events they make."""
    conn = server.connect()
    events = 0
    with conn.cursor() as cur:
        cur.execute(f"CREATE TABLE {db}.t (id INT PRIMARY KEY, v INT, s VARCHAR(20))")
        for b in range(60):
            conn.begin()
            cur.executemany(f"INSERT INTO {db}.t VALUES (%s, %s, %s)",
                            [(b * 500 + i, i, f"b{b}") for i in range(500)])
            events += 500
            n = cur.execute(f"UPDATE {db}.t SET v = v + 1 WHERE id BETWEEN %s AND %s", (b * 500, b * 500 + 99))
            events += n
            n = cur.execute(f"DELETE FROM {db}.t WHERE id BETWEEN %s AND %s", (b * 500 + 100, b * 500 + 149))
            events += n
            conn.commit()
        cur.execute(f"UPDATE {db}.t SET id = id + 1000000 WHERE id < 10")   # key changes: d + c
        events += 2 * 10
    conn.close()
    return events


def test_kill_9_mid_binlog(tmp_path, mysql_server):
    db = new_database(mysql_server)
    conn = mysql_server.connect()
    start = detect(conn).binlog_status(conn)   # SHOW BINARY LOG STATUS on MySQL 8.4
    file, pos = start.file, start.pos
    events = _workload(mysql_server, db)
    extra = (f'startup-specific-offset-file = "{file}"\nstartup-specific-offset-pos = {pos}')
    ref = tmp_path / "ref"
    run_until(pipeline(ref, mysql_server, db, "specific-offset", extra), ref, events)
    expected = lake(ref)
    assert sum(expected.values()) == events
    d = tmp_path / "killed"
    path = pipeline(d, mysql_server, db, "specific-offset", extra)
    crash_at(path, "checkpoint-committed", 4)
    kill_at_random(path, str(d / "state"), times=2, between=(0.0, 0.8), min_kills=1)
    err = run_until(path, d, events)
    assert "resuming from checkpoint" in err
    assert lake(d) == expected
