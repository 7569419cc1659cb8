"""Throughput of the MySQL/MariaDB source: snapshot rows/s into blackhole (``hub run``, as a
user runs it, parallelism 1 and 2, with peak RSS) and binlog row images/s decoded.

    python bench/mysql_bench.py [--rows 1000000] [--changes 200000]

Uses a throwaway MariaDB (Debian package) unless HUB_TEST_MYSQL names a server
(e.g. mysql://root:hub@127.0.0.1:3306 for docker-compose's MySQL 8).  Table: orders-like
(BIGINT id, INT, DECIMAL(12,2), VARCHAR(16), VARCHAR(200), DATETIME(6), JSON).
"""
from __future__ import annotations

import argparse
import os
import sys

from hubrun import run_hub
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from tests.servers import mariadb  # noqa: E402

PIPELINE = """
[pipeline]
name = "mysql-bench"
parallelism = {p}
[checkpoint]
interval = "1s"
dir = "{dir}/state"
[source]
{connection}
tables = ["bench\\\\.orders"]
startup-mode = "initial-only"
[sink]
type = "blackhole"
"""


def fill(server, rows: int) -> None:
    conn = server.connect()
    with conn.cursor() as cur:
        cur.execute("DROP DATABASE IF EXISTS bench")
        cur.execute("CREATE DATABASE bench")
        cur.execute("CREATE TABLE bench.orders (id BIGINT PRIMARY KEY, customer_id INT, "
                    "amount DECIMAL(12,2), status VARCHAR(16), note VARCHAR(200), "
                    "updated_at DATETIME(6), attrs JSON)")
        cur.execute("SET SESSION sql_log_bin = 0")  # the snapshot data needs no binlog
        batch = 20_000
        for start in range(0, rows, batch):
            vals = ",".join(
                f"({i},{i % 100000},{i % 100000}.{i % 100:02d},'{('paid', 'shipped', 'pending')[i % 3]}',"
                f"'note for order {i} with some words to make it longer',"
                f"'2024-01-{1 + i % 28:02d} 10:{i % 60:02d}:00.{i % 1000000:06d}',"
                f"'{{\"color\": \"red\", \"size\": {i % 50}}}')" for i in range(start, min(rows, start + batch)))
            cur.execute(f"INSERT INTO bench.orders VALUES {vals}")
    conn.close()


def snapshot(server, p: int) -> tuple[float, float, float]:
    work = tempfile.mkdtemp(prefix="hub-mysql-bench-")
    path = f"{work}/pipeline.toml"
    with open(path, "w") as f:
        f.write(PIPELINE.format(p=p, dir=work, connection=server.source_toml()))
    r = run_hub(path)
    return r.rows_per_s, r.wall_s, r.peak_rss_mb


def binlog(server, changes: int) -> list[tuple[str, int, float, float]]:
    from sources.mysql.catalog import describe
    from sources.mysql.dialect import detect
    from sources.mysql.events import RowsDecoder
    from sources.mysql.protocol import ROW_EVENTS, ROTATE, TABLE_MAP, BinlogClient

    conn = server.connect()
    dialect = detect(conn)
    with conn.cursor() as cur:
        cur.execute("CREATE TABLE IF NOT EXISTS bench.changes LIKE bench.orders")
        cur.execute("TRUNCATE bench.changes")
    table = describe(conn, "bench.changes", {})
    out = []
    for kind in ("insert", "update"):
        start = dialect.binlog_status(conn)
        with conn.cursor() as cur:
            if kind == "insert":
                for s in range(0, changes, 10_000):
                    cur.execute(f"INSERT INTO bench.changes SELECT * FROM bench.orders WHERE id >= {s} "
                                f"AND id < {s + 10_000}")
            else:
                for s in range(0, changes, 10_000):
                    cur.execute(f"UPDATE bench.changes SET customer_id = customer_id + 1 WHERE id >= {s} "
                                f"AND id < {s + 10_000}")
        end = dialect.binlog_status(conn)
        client = BinlogClient({"host": server.host, "port": server.port, "user": server.user,
                               "password": server.password}, dialect, 6999, 0, 60)
        decoder = RowsDecoder(True, dialect.name == "mariadb")
        n, file = 0, start.file
        t0 = time.monotonic()
        cpu0 = time.process_time()
        client.open(start)
        for ev in client.events():
            if ev.type == ROTATE:
                file = ev.body[8:].decode()
            elif ev.type == TABLE_MAP:
                decoder.table_map(ev.body, lambda tm: table if tm.table == "changes" else None)
            elif ev.type in ROW_EVENTS:
                got = decoder.rows(ev.type, ev.body)
                if got is not None:
                    n += len(got[2])
            if file == end.file and ev.log_pos >= end.pos:
                break
        client.close()
        out.append((kind, n, n / (time.monotonic() - t0), n / (time.process_time() - cpu0)))
        if kind == "update":
            out.append(("reflected", n, *reflected(server, dialect, table, start, end, n)))
    return out


def reflected(server, dialect, table, start, end, n: int) -> tuple[float, float]:
    """The binlog split right after a snapshot: it starts where the snapshot started, and the
    snapshotted table's changes before its chunks' HIGH are skipped (here every change of the
    range, one chunk covering the table with HIGH at the range's end).  Row images/s."""
    import queue

    from runtime.batch import ChangeBatch
    from sources.mysql.binlog import BinlogFetcher
    from sources.mysql.config import MySqlSourceConfig
    from sources.mysql.offset import BinlogOffset
    from sources.mysql.split import BinlogSplit, ReflectedChunk

    config = MySqlSourceConfig.model_validate({
        "hostname": server.host, "port": server.port, "username": server.user,
        "password": server.password, "tables": ["bench\\.changes"], "heartbeat-interval": "100ms"})
    split = BinlogSplit("binlog", BinlogOffset(start.file, start.pos),
                        tables={table.table_id: table},
                        chunks=(ReflectedChunk(table.table_id, None, None, end),))
    units: queue.Queue = queue.Queue(maxsize=4)
    t0, cpu0 = time.monotonic(), time.process_time()
    fetcher = BinlogFetcher(config, config.connection_settings(), dialect, 6998, split, units)
    fetcher.start()
    emitted = 0
    while True:
        unit = units.get(timeout=120)
        if isinstance(unit, BaseException):
            raise unit
        emitted += sum(len(i) for i in unit.items if isinstance(i, ChangeBatch))
        if not unit.offset.is_before(end):
            break
    wall, cpu = time.monotonic() - t0, time.process_time() - cpu0
    fetcher.stop()
    assert emitted == 0, f"{emitted} reflected changes emitted"
    return n / wall, n / cpu


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--changes", type=int, default=200_000)
    args = ap.parse_args()
    server = mariadb.from_env()
    owned = None
    if server is None:
        owned = mariadb.ThrowawayMariaDB()
        server = owned.start()
    try:
        fill(server, args.rows)
        print(f"snapshot of {args.rows:,} rows into blackhole (hub run, initial-only)")
        print(f"{'parallelism':>12} {'rows/s':>12} {'wall s':>8} {'peak RSS MB':>12}")
        for p in (1, 2):
            rate, wall, rss = snapshot(server, p)
            print(f"{p:>12} {rate:>12,.0f} {wall:>8.2f} {rss:>12.0f}")
        print(f"\nbinlog decoding ({args.changes:,} row images each, one reader; 'reflected': "
              "the updates read by the binlog split as changes a snapshot chunk already has)")
        print(f"{'kind':>8} {'images':>10} {'images/s':>12} {'per CPU s':>12}")
        for kind, n, rate, cpu in binlog(server, args.changes):
            print(f"{kind:>8} {n:>10,} {rate:>12,.0f} {cpu:>12,.0f}")
    finally:
        if owned is not None:
            owned.stop()


if __name__ == "__main__":
    main()
