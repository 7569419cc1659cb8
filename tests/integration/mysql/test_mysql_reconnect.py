"""The server cuts the binlog connection (``KILL`` of the dump thread) while rows flow, once
in the middle of a large transaction: the reader reconnects with backoff from the last position
it handed over, and the sink ends with every change exactly once.  Every checkpointed offset is
a transaction boundary, or the start of a transaction with ``skip_rows``."""
from __future__ import annotations

import random
import threading
import time

import pytest

from sources.mysql.binlog import BinlogFetcher
from sources.mysql.dialect import detect
from sources.mysql.offset import BinlogOffset
from sources.mysql.protocol import QUERY, ROTATE, XID, BinlogClient, query_of, rotate_target
from sources.mysql.reader import MySqlReader
from tests.integration.mysql.helpers import (Running, committed, exactly_once, new_database,
                                             replay, source_config, table_rows)

pytestmark = [pytest.mark.integration, pytest.mark.mysql]


def dump_threads(server) -> set[int]:
    conn = server.connect()
    with conn.cursor() as cur:
        cur.execute("SHOW PROCESSLIST")
        ids = {row[0] for row in cur.fetchall() if str(row[4]).startswith("Binlog Dump")}
    conn.close()
    return ids


def kill_dump(server, ignore: set[int], timeout: float = 20.0) -> int:
    """KILL the pipeline's binlog dump thread once it is there; returns its id."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ours = dump_threads(server) - ignore
        if ours:
            victim = min(ours)
            conn = server.connect()
            with conn.cursor() as cur:
                cur.execute(f"KILL {victim}")
            conn.close()
            return victim
        time.sleep(0.02)
    raise AssertionError("no binlog dump thread of the pipeline showed up")


def boundaries(server, start: BinlogOffset) -> set[tuple[str, int]]:
    """Positions after every transaction (XID, COMMIT, DDL) from ``start`` to the end."""
    conn = server.connect()
    dialect = detect(conn)
    end = dialect.binlog_status(conn)
    conn.close()
    client = BinlogClient({"host": server.host, "port": server.port, "user": server.user,
                           "password": server.password}, dialect, 7001, 0, 30)
    out = {(start.file, start.pos)}
    file = start.file
    try:
        client.open(BinlogOffset(start.file, start.pos))
        for ev in client.events():
            if ev.type == ROTATE:
                file, _ = rotate_target(ev.body)
            elif ev.type == XID or (ev.type == QUERY and not query_of(ev.body)[1].startswith("BEGIN")):
                out.add((file, ev.log_pos))
            if (file, ev.log_pos) >= (end.file, end.pos) and ev.log_pos:
                break
    finally:
        client.close()
    return out


def wait_until(check, what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"no {what} within {timeout}s"
        time.sleep(0.01)


def _small_writes(server, table: str, stop: threading.Event) -> None:
    rnd = random.Random(3)
    conn = server.connect()
    n = 0
    with conn.cursor() as cur:
        while not stop.is_set():
            conn.begin()
            cur.execute(f"INSERT INTO {table} VALUES (%s, 0, 'small')", (1_000_000 + n,))
            cur.execute(f"UPDATE {table} SET v = v + 1 WHERE id = %s", (rnd.randrange(2000),))
            conn.commit()
            n += 1
    conn.close()


def test_server_cuts_the_binlog_connection(mysql_server, monkeypatch):
    db = new_database(mysql_server)
    table = f"{db}.t"
    conn = mysql_server.connect()
    with conn.cursor() as cur:
        cur.execute(f"CREATE TABLE {table} (id INT PRIMARY KEY, v INT NOT NULL, s VARCHAR(250))")
        cur.executemany(f"INSERT INTO {table} VALUES (%s, 0, 'start')", [(i, ) for i in range(2000)])
    opened: list[BinlogOffset] = []
    paused, resume = threading.Event(), threading.Event()
    cuts: list[BinlogOffset] = []
    checkpointed: list[BinlogOffset] = []
    real_open, real_cut, real_state = BinlogClient.open, BinlogFetcher._cut, MySqlReader.snapshot_state

    def open_(self, offset):
        if self.server_id != 7001:
            opened.append(offset)
        return real_open(self, offset)

    def cut(self, offset):
        cuts.append(offset)
        real_cut(self, offset)
        if offset.skip_rows and not paused.is_set():
            # inside the large transaction: hold the reader here until the server cut it off
            paused.set()
            resume.wait(20)

    def state(self, checkpoint_id):
        splits = real_state(self, checkpoint_id)
        checkpointed.extend(s.offset for s in splits if getattr(s, "kind", "") == "binlog")
        return splits

    monkeypatch.setattr(BinlogClient, "open", open_)
    monkeypatch.setattr(BinlogFetcher, "_cut", cut)
    monkeypatch.setattr(MySqlReader, "snapshot_state", state)
    config = source_config(mysql_server, db, **{"fetch-size": 200, "connect-max-retries": 2})
    ignore = dump_threads(mysql_server)
    stop = threading.Event()
    writer = threading.Thread(target=_small_writes, args=(mysql_server, table, stop))
    with Running(config, parallelism=2) as run:
        run.wait_for(lambda ev: len(ev) >= 2000)
        writer.start()
        # three cuts while small transactions flow (more than connect-max-retries: the
        # backoff starts over once the reconnected stream hands over data again)
        for _ in range(3):
            time.sleep(0.3)
            n_open = len(opened)
            ignore.add(kill_dump(mysql_server, ignore))
            wait_until(lambda: len(opened) > n_open, "a reconnect")
            n_cuts = len(cuts)
            wait_until(lambda: len(cuts) > n_cuts, "data after the reconnect")
        # one in the middle of a large transaction (handed over in units of 4 x fetch-size
        # rows), larger than what socket buffers hold, so the rest must come after the cut
        with conn.cursor() as cur:
            conn.begin()
            cur.execute(f"UPDATE {table} SET v = v + 1 WHERE id < 2000")
            cur.executemany(f"INSERT INTO {table} VALUES (%s, 0, %s)",
                            [(i, f"{i:0240d}") for i in range(200_000, 220_000)])
            conn.commit()
        assert paused.wait(30), "the reader never handed over part of the large transaction"
        ignore.add(kill_dump(mysql_server, ignore))
        resume.set()
        time.sleep(0.5)
        stop.set()
        writer.join()
        with conn.cursor() as cur:
            cur.execute(f"INSERT INTO {table} VALUES (-1, 0, 'last')")
        expected = table_rows(mysql_server, db, "t", config)
        run.wait_for(lambda ev: replay(ev) == expected, timeout=90)
        time.sleep(1.0)
        events = committed(run.store)
    assert replay(events) == expected
    assert len(exactly_once(events, table)) == len(expected)
    assert len(opened) >= 5, f"the reader did not reconnect after each cut: {opened}"
    assert any(o.skip_rows for o in opened[1:]), \
        f"no reconnect from inside the large transaction: {opened}"
    # checkpoints only at transaction boundaries (or the start of one, with skip_rows)
    offsets = checkpointed
    valid = boundaries(mysql_server, min(offsets, key=lambda o: o.key))
    bad = [o for o in offsets if (o.file, o.pos) not in valid]
    assert not bad, f"checkpoint offsets off a transaction boundary: {bad[:5]}"
    if detect(conn).name == "mariadb":   # and the GTID state is the one of that position
        with conn.cursor() as cur:
            for o in {(o.file, o.pos, o.gtid) for o in offsets if o.gtid}:
                cur.execute("SELECT BINLOG_GTID_POS(%s, %s)", o[:2])
                assert cur.fetchone()[0] == o[2], o
