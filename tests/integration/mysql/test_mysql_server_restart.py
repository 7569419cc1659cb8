"""A source restart never stops CDC silently: rows flow from a MariaDB of the test's own into
a Parquet lake (``hub run`` in a subprocess) while the server is shut down cleanly and started
again, twice, mid-stream (once by SQL SHUTDOWN, once by SIGTERM).  The server's end-of-stream
packet is a lost stream: the reader says so, reconnects with backoff once the server is back,
and the lake ends with every row of the source exactly once, no human action."""
from __future__ import annotations

import os
import signal
import threading
import time
from collections import Counter

import pytest

from tests.e2e.lake import lake_rows
from tests.killing import hub
from tests.servers import mariadb

pytestmark = [pytest.mark.integration, pytest.mark.mysql]

SINK = """\
[sink]
type = "files"
path = "{dir}/lake"
format = "parquet"
[restart]
delay = "500ms"
max-delay = "2s"
"""



@pytest.fixture
def own_server():
    mariadb.skip_unless_installed_here()  # never HUB_TEST_MYSQL's server: this one is shut down
    owner = mariadb.ThrowawayMariaDB()
    server = owner.start()
    try:
        yield owner, server
    finally:
        owner.stop()


class Writer(threading.Thread):
    """Inserts rows one transaction at a time until stopped, riding out the server's
    absence (a failed transaction is tried again with the same id)."""

    def __init__(self, server):
        super().__init__(daemon=True)
        self.server, self.next_id, self.stopped = server, 0, threading.Event()
        self.done = threading.Event()

    def run(self) -> None:
        import pymysql

        conn = None
        while not self.stopped.is_set():
            try:
                if conn is None:
                    conn = self.server.connect()
                with conn.cursor() as cur:
                    cur.execute("INSERT IGNORE INTO shop.t VALUES (%s, %s)",
                                (self.next_id, f"row {self.next_id}"))
                self.next_id += 1
                time.sleep(0.005)
            except pymysql.err.MySQLError:
                conn = None
                time.sleep(0.1)
        self.done.set()


def lake_ids(tmp) -> Counter:
    rows = lake_rows(f"{tmp}/lake", drop=("ts_ms",))
    out: Counter = Counter()
    for row, n in rows.items():
        assert row[:2] == ("shop", "t"), row
        ids = [v for v in row[2:] if isinstance(v, int)]
        out[ids[0]] += n
    return out


def source_ids(server) -> set[int]:
    conn = server.connect()
    with conn.cursor() as cur:
        cur.execute("SELECT id FROM shop.t")
        ids = {r[0] for r in cur.fetchall()}
    conn.close()
    return ids


def test_mariadb_shutdown_and_restart_mid_stream(tmp_path, own_server):
    owner, server = own_server
    conn = server.connect()
    with conn.cursor() as cur:
        cur.execute("CREATE DATABASE shop")
        cur.execute("CREATE TABLE shop.t (id INT PRIMARY KEY, s VARCHAR(40))")
        cur.executemany("INSERT INTO shop.t VALUES (%s, %s)", [(-i, "snap") for i in range(1, 101)])
    conn.close()
    path = tmp_path / "pipeline.toml"
    path.write_text(server.pipeline_toml("mysql-restart", tmp_path / "state", "shop")
                    + SINK.format(dir=tmp_path))
    p = hub("run", str(path), "--no-progress")
    writer = Writer(server)
    try:
        deadline = time.monotonic() + 60
        while sum(lake_ids(tmp_path).values()) < 100:
            assert time.monotonic() < deadline and p.poll() is None, "no snapshot in the lake"
            time.sleep(0.2)
        writer.start()
        for how in ("sql", "sigterm"):
            time.sleep(1.0)                      # rows flow
            owner.shutdown(how)
            time.sleep(1.5)                      # the server is away a while
            owner.restart()
            assert p.poll() is None, "the pipeline ended while the server was away"
        time.sleep(1.0)
        writer.stopped.set()
        writer.done.wait(30)
        want = source_ids(server)
        assert len(want) > 150
        deadline = time.monotonic() + 60
        while set(lake_ids(tmp_path)) != want and time.monotonic() < deadline and p.poll() is None:
            time.sleep(0.3)
        time.sleep(0.5)                          # duplicates would show by now
        got = lake_ids(tmp_path)
        assert set(got) == want, (f"missing {sorted(want - set(got))[:10]}, "
                                  f"extra {sorted(set(got) - want)[:10]}")
        assert max(got.values()) == 1, [k for k, n in got.items() if n > 1][:10]
    finally:
        writer.stopped.set()
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
        _, err = p.communicate(timeout=60)
        print(err)   # shown when the test fails
    assert p.returncode == 0, err
    assert "closed the stream (server shutdown?); reconnecting in" in err, err
    assert os.path.isdir(tmp_path / "lake")




def test_mariadb_restart_mid_snapshot_is_retried(tmp_path, own_server):
    """A snapshot connection lost to a server restart is transient: the runtime's [restart]
    resumes from the last checkpoint, and the lake ends with every row once (it used to end
    the pipeline: the driver's error escaped untranslated)."""
    owner, server = own_server
    conn = server.connect()
    with conn.cursor() as cur:
        cur.execute("CREATE DATABASE shop")
        cur.execute("CREATE TABLE shop.t (id INT PRIMARY KEY, s VARCHAR(40))")
        for start in range(0, 30_000, 5_000):
            cur.executemany("INSERT INTO shop.t VALUES (%s, %s)",
                            [(i, f"row {i}") for i in range(start, start + 5_000)])
    conn.close()
    path = tmp_path / "pipeline.toml"
    path.write_text(server.pipeline_toml("mysql-restart-snapshot", tmp_path / "state", "shop", 2,
                                         chunk_size=100) + SINK.format(dir=tmp_path))
    p = hub("run", str(path), "--no-progress")
    try:
        deadline = time.monotonic() + 60
        while sum(lake_ids(tmp_path).values()) < 500:
            assert time.monotonic() < deadline and p.poll() is None, "no snapshot in the lake"
            time.sleep(0.05)
        assert sum(lake_ids(tmp_path).values()) < 30_000, "the snapshot was over already"
        owner.shutdown("sigterm")
        time.sleep(1.0)
        owner.restart()
        want = source_ids(server)
        deadline = time.monotonic() + 90
        while set(lake_ids(tmp_path)) != want and time.monotonic() < deadline and p.poll() is None:
            time.sleep(0.3)
        time.sleep(0.5)
        got = lake_ids(tmp_path)
        assert set(got) == want, f"missing {len(want - set(got))} rows"
        assert max(got.values()) == 1, [k for k, n in got.items() if n > 1][:10]
    finally:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
        _, err = p.communicate(timeout=60)
        print(err)   # shown when the test fails
    assert p.returncode == 0, err
    assert "restarting from the latest checkpoint" in err, err


def test_a_server_that_stays_away_ends_the_stream_after_connect_max_retries(own_server):
    """With ``connect-max-retries = N`` the stream gives up after N reconnects in a row without
    data, for good (terminal: no runtime restart loop nests around the stream's own), with one
    line saying why; by default (0) it waits as long as the server is away."""
    from runtime.errors import TerminalError
    from tests.integration.mysql.helpers import Running, committed, source_config

    owner, server = own_server
    conn = server.connect()
    with conn.cursor() as cur:
        cur.execute("CREATE DATABASE shop")
        cur.execute("CREATE TABLE shop.t (id INT PRIMARY KEY)")
    config = source_config(server, "shop", **{"startup-mode": "latest",
                                              "connect-max-retries": 2})
    run = Running(config, parallelism=1)
    with run:
        time.sleep(1.0)
        with conn.cursor() as cur:
            cur.execute("INSERT INTO shop.t VALUES (1)")
        run.wait_for(lambda ev: len(ev) == 1)
        conn.close()
        owner.shutdown("sql")
        run.thread.join(30)
        assert not run.thread.is_alive(), "the stream did not give up"
    err = run.error
    assert isinstance(err, TerminalError) and not err.transient, err
    assert "closed the stream (server shutdown?)" in str(err) or "can't connect" in str(err), err
    assert "gave up after 2 reconnects" in str(err) and "connect-max-retries" in str(err), err
    assert len(committed(run.store)) == 1
