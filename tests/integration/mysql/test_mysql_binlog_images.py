"""The binlog split's batches as the fetch loop hands them over: before and after images of
updates (the after image reuses unchanged values of the before image: NULL transitions and
changed bytes must not leak a stale value) and the binlog positions of every event
(``ChangeBatch.positions``), checked against the server's own ``SHOW BINLOG EVENTS``."""
from __future__ import annotations

import datetime as dt
import queue
from decimal import Decimal

import pytest

from runtime.batch import ChangeBatch
from sources.mysql.binlog import BinlogFetcher
from sources.mysql.catalog import describe
from sources.mysql.dialect import detect
from sources.mysql.offset import BinlogOffset
from sources.mysql.split import BinlogSplit
from tests.integration.mysql.helpers import new_database, source_config

pytestmark = [pytest.mark.integration, pytest.mark.mysql]

UTC = dt.timezone.utc


def _fetch(server, db: str, table, start: BinlogOffset, end: BinlogOffset) -> list[ChangeBatch]:
    """Every batch the fetch loop hands over from ``start`` up to ``end``."""
    conn = server.connect()
    dialect = detect(conn)
    conn.close()
    config = source_config(server, db)
    split = BinlogSplit("binlog", start, tables={table.table_id: table})
    units: queue.Queue = queue.Queue()
    fetcher = BinlogFetcher(config, config.connection_settings(), dialect, 7301, split, units)
    fetcher.start()
    batches = []
    try:
        while True:
            unit = units.get(timeout=30)
            if isinstance(unit, BaseException):
                raise unit
            batches += [i for i in unit.items if isinstance(i, ChangeBatch)]
            if not unit.offset.is_before(end):
                return batches
    finally:
        fetcher.stop()


def test_update_images_and_positions(mysql_server):
    db = new_database(mysql_server)
    conn = mysql_server.connect()
    dialect = detect(conn)
    with conn.cursor() as cur:
        cur.execute("SET time_zone = '+00:00'")
        cur.execute(f"CREATE TABLE {db}.t (id INT PRIMARY KEY, n INT, d DECIMAL(12,2), "
                    "dt DATETIME(6), ts TIMESTAMP(3) NULL, tm TIME(3), s VARCHAR(20))")
        cur.execute(f"INSERT INTO {db}.t VALUES "
                    "(1, 1, 10.50, '2024-01-01 10:00:00.000001', '2024-01-01 10:00:00.5', "
                    "'-01:00:00.250', 'a'), "
                    "(2, 2, -3.25, '2024-02-02 00:00:00', NULL, '00:00:01', 'b'), "
                    "(3, 3, NULL, NULL, '2024-03-03 03:03:03.003', NULL, NULL)")
    table = describe(conn, f"{db}.t", {})
    start = dialect.binlog_status(conn)
    with conn.cursor() as cur:
        cur.execute("SET time_zone = '+00:00'")
        # one statement, three rows in one rows event: unchanged columns reused, one changed
        cur.execute(f"UPDATE {db}.t SET n = n + 10")
        cur.execute(f"UPDATE {db}.t SET d = 11.75, dt = '2025-05-05 05:05:05.5' WHERE id = 1")
        cur.execute(f"UPDATE {db}.t SET d = NULL, ts = '2024-06-06 06:06:06', tm = NULL "
                    "WHERE id = 2")                                       # value <-> NULL
        cur.execute(f"UPDATE {db}.t SET d = 0.01, dt = '2024-01-01 10:00:00.000001', "
                    "tm = '838:59:59' WHERE id = 3")                      # NULL -> value
        cur.execute(f"UPDATE {db}.t SET id = 4 WHERE id = 1")            # key change
    end = dialect.binlog_status(conn)
    batches = _fetch(mysql_server, db, table, start, end)

    ops = "".join(b.ops for b in batches)
    rows = [r for b in batches for r in b.rows()]
    befores = [r for b in batches for r in (b.before or [None] * len(b))]
    assert ops == "uuuuuudc"
    d1 = dt.datetime(2024, 1, 1, 10, 0, 0, 1)
    ts1 = dt.datetime(2024, 1, 1, 10, 0, 0, 500000, tzinfo=UTC)
    tm1 = -dt.timedelta(hours=1, milliseconds=250)
    r1 = (1, 1, Decimal("10.50"), d1, ts1, tm1, "a")
    r2 = (2, 2, Decimal("-3.25"), dt.datetime(2024, 2, 2), None, dt.timedelta(seconds=1), "b")
    r3 = (3, 3, None, None, dt.datetime(2024, 3, 3, 3, 3, 3, 3000, tzinfo=UTC), None, None)
    r1b = (1, 11) + r1[2:]
    r2b = (2, 12) + r2[2:]
    r3b = (3, 13) + r3[2:]
    r1c = (1, 11, Decimal("11.75"), dt.datetime(2025, 5, 5, 5, 5, 5, 500000), ts1, tm1, "a")
    r2c = (2, 12, None, dt.datetime(2024, 2, 2), dt.datetime(2024, 6, 6, 6, 6, 6, tzinfo=UTC),
           None, "b")
    r3c = (3, 13, Decimal("0.01"), d1, r3[4], dt.timedelta(hours=838, minutes=59, seconds=59),
           None)
    assert list(zip(befores[:6], rows[:6])) == [
        (r1, r1b), (r2, r2b), (r3, r3b), (r1b, r1c), (r2b, r2c), (r3b, r3c)]
    assert rows[6:] == [r1c, (4,) + r1c[1:]]
    assert [str(r[2]) for r in rows[:3]] == ["10.50", "-3.25", "None"]   # scale kept

    # positions: one per event; the rows event's start, the row within it, the server, GTID
    pos = [p for b in batches for p in b.positions.to_pylist()]
    assert len(pos) == len(ops)
    assert [p["row"] for p in pos] == [0, 1, 2, 0, 0, 0, 0, 0]
    assert len({p["pos"] for p in pos[:3]}) == 1 and len({p["pos"] for p in pos}) == 5
    assert len({p["gtid"] for p in pos}) == 5 and all(p["gtid"] for p in pos)
    with conn.cursor() as cur:
        cur.execute("SELECT @@server_id")
        server_id = cur.fetchone()[0]
        for p in pos:
            assert p["server_id"] == server_id and p["file"] == end.file
            cur.execute(f"SHOW BINLOG EVENTS IN '{p['file']}' FROM {p['pos']} LIMIT 1")
            event = cur.fetchone()
            assert event[1] == p["pos"] and "rows" in event[2].lower(), event
        if dialect.name == "mariadb":
            # the GTID of each transaction, as the server prints it
            cur.execute(f"SELECT BINLOG_GTID_POS('{end.file}', {end.pos})")
            assert pos[-1]["gtid"] == cur.fetchone()[0]
    conn.close()
