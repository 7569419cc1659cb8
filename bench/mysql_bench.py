"""Throughput of the MySQL/MariaDB source, side by side with the bare clients in the same run.

    python bench/mysql_bench.py [--rows 1000000] [--changes 200000] [--rounds 3] [--skip snapshot,binlog]

1. snapshot (``hub run``, as a user runs it, startup-mode initial-only) into blackhole and into
   Parquet files (files sink), parallelism 1 and 2, against the bare paths, each in a process
   of its own, alternating in each round, best of ``--rounds`` (peak RSS: the highest):
   * ``bare mysqlclient``: MySQLdb's SSCursor, ``fetchmany(10000)`` until the end (no Arrow);
   * ``bare connectorx -> parquet``: ``connectorx.read_sql(return_type="arrow")`` (``p``
     partitions on id) then ``pyarrow.parquet.write_table``, with the codec the hub writes
     (``--codec``, default the files sink's zstd; pyarrow's own default is snappy).
   ``vs mc`` is the ratio to the bare mysqlclient read (p=1), ``vs cx`` to connectorx ->
   Parquet at the same parallelism.  A bare path whose package is missing is left out
   (``pip install mysqlclient connectorx``).
2. binlog: row images/s decoded from 200,000 inserts and 200,000 updates (one reader, wall and
   CPU), and the full binlog fetch loop on the updates (``fetch``: decoding, batching into
   ChangeBatches with versions and positions, the unit hand-over) and as the split right after a
   snapshot (``reflected``: every change skipped as already in a chunk).

Uses a throwaway MariaDB (Debian package) unless HUB_TEST_MYSQL names a server
(e.g. mysql://root:hub@127.0.0.1:3306 for docker-compose's MySQL 8).  Table: orders-like
(BIGINT id, INT, DECIMAL(12,2), VARCHAR(16), VARCHAR(200), DATETIME(6), JSON).
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time

from hubrun import run_hub

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
{sink}
"""
SINKS = {"blackhole": '[sink]\ntype = "blackhole"\n',
         "parquet": '[sink]\ntype = "files"\npath = "{dir}/lake"\nformat = "parquet"\n'
                    '[sink.format-options]\ncompression = "{codec}"\n'}
CODEC = ["zstd"]   # --codec: the Parquet codec of both the hub and the bare path


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


def count(server) -> int:
    conn = server.connect()
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT COUNT(*) FROM bench.orders")
            return int(cur.fetchone()[0])
    except Exception:  # noqa: BLE001 - no table yet
        return -1
    finally:
        conn.close()


def snapshot(server, p: int, sink: str) -> tuple[float, float]:
    """``hub run`` of the table into ``sink``: (seconds of the run, peak RSS MB)."""
    work = tempfile.mkdtemp(prefix="hub-mysql-bench-")
    path = f"{work}/pipeline.toml"
    with open(path, "w") as f:
        f.write(PIPELINE.format(p=p, dir=work, connection=server.source_toml(),
                                sink=SINKS[sink].format(dir=work, codec=CODEC[0])))
    try:
        r = run_hub(path)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return r.run_s, r.peak_rss_mb


def bare(server_url: str, p: int, client: str, out: str, codec: str) -> None:
    """In its own process (``--bare``): the bare read with ``client``; prints rows, seconds,
    peak RSS as JSON."""
    from urllib.parse import urlparse

    u = urlparse(server_url)
    t0 = time.monotonic()
    if client == "mysqlclient":
        import MySQLdb
        import MySQLdb.cursors

        conn = MySQLdb.connect(host=u.hostname, port=u.port, user=u.username, password=u.password)
        cur = conn.cursor(MySQLdb.cursors.SSCursor)
        cur.execute("SELECT * FROM bench.orders")
        n = 0
        while rows := cur.fetchmany(10_000):
            n += len(rows)
        conn.close()
    else:
        import connectorx
        import pyarrow.parquet as pq

        kw = {"partition_on": "id", "partition_num": p} if p > 1 else {}
        table = connectorx.read_sql(server_url, "SELECT * FROM bench.orders",
                                    return_type="arrow", **kw)
        os.makedirs(out, exist_ok=True)
        pq.write_table(table, f"{out}/orders.parquet", compression=codec)
        n = table.num_rows
    secs = time.monotonic() - t0
    print(json.dumps({"rows": n, "secs": secs,
                      "rss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))


def bare_clients() -> list[str]:
    """The bare paths whose package is installed."""
    out = []
    for client, module in (("mysqlclient", "MySQLdb"), ("connectorx", "connectorx")):
        try:
            __import__(module)
            out.append(client)
        except ModuleNotFoundError:
            print(f"(bare {client} left out: pip install {client})")
    return out


def run_bare(server, p: int, client: str) -> tuple[float, float]:
    url = f"mysql://{server.user}:{server.password}@{server.host}:{server.port}/bench"
    work = tempfile.mkdtemp(prefix="hub-mysql-bench-bare-")
    try:
        out = subprocess.run([sys.executable, __file__, "--bare", url, str(p), client, work,
                              CODEC[0]],
                             capture_output=True, text=True, check=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    got = json.loads(out.stdout.strip().splitlines()[-1])
    return got["secs"], got["rss"]


def snapshots(server, rows: int, rounds: int) -> None:
    """Every path once per round, alternating; the best of ``rounds`` of each."""
    print(f"snapshot of {rows:,} rows (hub run, initial-only; Parquet: {CODEC[0]} both paths); "
          f"best of {rounds}, peak RSS the highest")
    best: dict[tuple[str, int], tuple[float, float]] = {}

    def note(path: str, p: int, secs: float, rss: float) -> None:
        old = best.get((path, p))
        best[(path, p)] = (min(secs, old[0]) if old else secs, max(rss, old[1]) if old else rss)
        print(f"   round: {path:<28} p={p} {rows / secs:>10,.0f} rows/s {secs:6.2f}s "
              f"{rss:6.0f} MB", flush=True)

    clients = bare_clients()
    for _ in range(rounds):
        for p in (1, 2):
            if p == 1 and "mysqlclient" in clients:
                note("bare mysqlclient", p, *run_bare(server, p, "mysqlclient"))
            note("hub -> blackhole", p, *snapshot(server, p, "blackhole"))
            if "connectorx" in clients:
                note("bare connectorx -> parquet", p, *run_bare(server, p, "connectorx"))
            note("hub -> parquet", p, *snapshot(server, p, "parquet"))
    print(f"{'path':<28} {'p':>2} {'rows/s':>10} {'s':>7} {'peak RSS MB':>12} {'vs mc':>6} "
          f"{'vs cx':>6}")
    mc = best.get(("bare mysqlclient", 1))
    for (path, p), (secs, rss) in sorted(best.items(), key=lambda kv: (kv[0][1], kv[0][0])):
        cx = best.get(("bare connectorx -> parquet", p))
        ratios = "".join(f" {b[0] / secs:>5.2f}x" if b and path.startswith("hub") else "       "
                         for b in (mc, cx))
        print(f"{path:<28} {p:>2} {rows / secs:>10,.0f} {secs:>7.2f} {rss:>12.0f}{ratios}")


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
            out.append(("fetch", n, *fetched(server, dialect, table, start, end, n, False)))
            out.append(("reflected", n, *fetched(server, dialect, table, start, end, n, True)))
    return out


def fetched(server, dialect, table, start, end, n: int, reflect: bool) -> tuple[float, float]:
    """The binlog split's fetch loop over the range: every change emitted (``reflect``
    False), or as right after a snapshot (``reflect`` True): it starts where the snapshot
    started, and the snapshotted table's changes before its chunks' HIGH are skipped (here
    every change of the range, one chunk covering the table with HIGH at the range's end).
    Row images/s (wall, CPU)."""
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
                        chunks=(ReflectedChunk(table.table_id, None, None, end),) if reflect else ())
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
    if reflect:
        assert emitted == 0, f"{emitted} reflected changes emitted"
    else:
        assert emitted == n, f"{emitted} changes emitted, not {n}"
    return n / wall, n / cpu


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--bare":
        bare(sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5], sys.argv[6])
        return
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--changes", type=int, default=200_000)
    ap.add_argument("--rounds", type=int, default=3, help="snapshot rounds (best of)")
    ap.add_argument("--skip", default="", help="comma-separated: snapshot, binlog")
    ap.add_argument("--codec", default="zstd", help="Parquet codec of both paths (the files "
                    "sink's default: zstd)")
    ap.add_argument("--keep-table", action="store_true",
                    help="don't refill bench.orders when it holds --rows rows already")
    args = ap.parse_args()
    skip = set(filter(None, args.skip.split(",")))
    CODEC[0] = args.codec
    server = mariadb.shared()  # docker-compose's, or a throwaway one stopped at exit
    if not (args.keep_table and count(server) == args.rows):
        fill(server, args.rows)
    if "snapshot" not in skip:
        snapshots(server, args.rows, args.rounds)
    if "binlog" not in skip:
        print(f"\nbinlog decoding ({args.changes:,} changes each, one reader; an update is one "
              "change of two row images, before and after; 'fetch': the binlog split's fetch "
              "loop on the updates; 'reflected': the updates read by the binlog split as "
              "changes a snapshot chunk already has)")
        print(f"{'kind':>9} {'changes':>10} {'changes/s':>12} {'per CPU s':>12}")
        for kind, n, rate, cpu in binlog(server, args.changes):
            print(f"{kind:>9} {n:>10,} {rate:>12,.0f} {cpu:>12,.0f}")


if __name__ == "__main__":
    main()
