"""Exactly once through the transform and route operators, proven with kill -9:

* datagen (inserts, updates, deletes) -> PostgreSQL through a ``[[transform]]`` with a filter
  and computed columns: the target equals what PostgreSQL itself computes (SQL) from a run of
  the same data without the transform;
* four sharded MariaDB tables (overlapping keys, one shard with a wider type and an extra
  column) -> one PostgreSQL table, and one Delta table, through a ``[[route]]`` (and a transform adding the source
  table to the key), with binlog changes while the pipeline is killed: the target equals the
  rows read from the four source tables at the end.
"""
from __future__ import annotations

import signal
import threading
import time
from decimal import Decimal

import pytest

from tests.integration.jdbc.databases import create_database
from tests.integration.mysql.helpers import new_database
from tests.killing import (crash_at, datagen_pipeline, hub, kill_at_random, latest_checkpoint,
                           run_to_end)

pytestmark = [pytest.mark.integration, pytest.mark.transform, pytest.mark.jdbc,
              pytest.mark.mysql]

ROWS = 6_000
SINK = '[sink]\ntype = "jdbc"\nurl = "{url}"\nbatch-size = 1000\n'
KEPT = ("paid", "shipped", "delivered")
TRANSFORM = """
[[transform]]
source-table = 'datagen\\.orders'
projection = "id, customer_id, amount * 100 AS cents, UPPER(status) AS status_uc"
filter = "status IN ('paid', 'shipped', 'delivered') AND customer_id IS NOT NULL"
"""


def _norm(rows: list[tuple]) -> set[tuple]:
    return {tuple(Decimal(v).normalize() if isinstance(v, Decimal) else v for v in r)
            for r in rows}


@pytest.fixture(scope="module")
def expected(postgres_server, tmp_path_factory):
    """The transform's result computed by PostgreSQL from a run without it."""
    d = tmp_path_factory.mktemp("raw")
    raw = create_database("postgres", postgres_server, "transform-raw")
    run_to_end(datagen_pipeline(d / "p.toml", SINK.format(url=raw.url), name="t-raw",
                                state=str(d / "state"), rows=ROWS, rps=0, delete_ratio=0.1))
    rows = raw.query("SELECT id, customer_id, amount * 100, upper(status) FROM orders "
                     "WHERE status IN ('paid', 'shipped', 'delivered') "
                     "AND customer_id IS NOT NULL")
    everything = raw.count("orders")
    assert 0 < len(rows) < everything  # the filter drops some rows and keeps some
    return _norm(rows), sorted(raw.snapshot("customers"))


def test_kill_9_through_a_filter_and_computed_columns(postgres_server, expected, tmp_path,
                                                      request):
    want, customers = expected
    db = create_database("postgres", postgres_server, request.node.nodeid)
    pipeline = datagen_pipeline(tmp_path / "p.toml", SINK.format(url=db.url) + TRANSFORM,
                                name="t-kill", state=str(tmp_path / "state"), rows=ROWS,
                                rps=4_000, delete_ratio=0.1)
    kill_at_random(pipeline, str(tmp_path / "state"), times=3, between=(0.0, 0.8))
    err = run_to_end(pipeline)
    assert "resuming from checkpoint" in err
    assert _norm(db.query("SELECT id, customer_id, cents, status_uc FROM orders")) == want
    assert sorted(db.snapshot("customers")) == customers  # no block matched it: unchanged
    assert db.prepared("hub:t-kill:") == []


# -- four shards into one table --------------------------------------------------------------
SHARDS = 4
PER_SHARD = 400


def _shards(server, db: str) -> None:
    conn = server.connect()
    with conn.cursor() as cur:
        for i in range(SHARDS):
            extra = ", extra VARCHAR(10)" if i == 3 else ""
            qty = "BIGINT" if i == 3 else "INT"
            cur.execute(f"CREATE TABLE {db}.order_{i} (id INT PRIMARY KEY, qty {qty}, "
                        f"note VARCHAR(20){extra})")
            cols = "id, qty, note" + (", extra" if i == 3 else "")
            marks = "%s, %s, %s" + (", %s" if i == 3 else "")
            cur.executemany(f"INSERT INTO {db}.order_{i} ({cols}) VALUES ({marks})",
                            [(k, k * 10 + i, f"s{i}-{k}", *((f"x{k}",) if i == 3 else ()))
                             for k in range(1, PER_SHARD + 1)])  # keys overlap across shards
    conn.commit()
    conn.close()


def _changes(server, db: str, stop: threading.Event) -> None:
    """Binlog changes in small transactions: updates, deletes and inserts on every shard,
    and a qty too wide for INT on the BIGINT shard."""
    conn = server.connect()
    k = 0
    with conn.cursor() as cur:
        while not stop.is_set() and k < 150:
            k += 1
            i = k % SHARDS
            cur.execute(f"UPDATE {db}.order_{i} SET qty = qty + 1, note = %s WHERE id = %s",
                        (f"u{k}", k))
            cur.execute(f"DELETE FROM {db}.order_{i} WHERE id = %s", (PER_SHARD - k,))
            cur.execute(f"INSERT INTO {db}.order_{i} (id, qty, note) VALUES (%s, %s, %s)",
                        (PER_SHARD + k, k, f"n{k}"))
            if i == 3:
                cur.execute(f"UPDATE {db}.order_3 SET qty = %s WHERE id = %s", (2**40 + k, k))
            conn.commit()
            time.sleep(0.02)
    conn.close()


def _source_rows(server, db: str) -> set[tuple]:
    conn = server.connect()
    out = set()
    with conn.cursor() as cur:
        for i in range(SHARDS):
            extra = "extra" if i == 3 else "NULL"
            cur.execute(f"SELECT id, qty, note, {extra} FROM {db}.order_{i}")
            out |= {(r[0], f"order_{i}", r[1], r[2], r[3]) for r in cur.fetchall()}
    conn.close()
    return out


class _Postgres:
    """The route's target in PostgreSQL (the JDBC sink)."""

    def __init__(self, server, label: str):
        self.db = create_database("postgres", server, label)
        self.sink = SINK.format(url=self.db.url)

    def rows(self) -> set[tuple] | None:
        if not self.db.visible("orders"):
            return None
        import psycopg

        try:
            return set(self.db.query("SELECT id, src, qty, note, extra FROM orders"))
        except psycopg.errors.UndefinedColumn:
            return None  # shard 3 (the one with "extra") not merged into it yet

    def check_types(self) -> None:
        types = dict(self.db.query("SELECT column_name, data_type FROM "
                                   "information_schema.columns WHERE table_name = 'orders'"))
        assert types["qty"] == "bigint"  # INT and BIGINT shards merged into BIGINT
        assert self.db.prepared("hub:t-route:") == []


class _Delta:
    """The route's target as a Delta table (the lake sink), read back by deltalake and Polars."""

    def __init__(self, path):
        self.path = str(path)
        self.sink = f'[sink]\ntype = "delta"\npath = "{self.path}"\n'

    def rows(self) -> set[tuple] | None:
        from tests.integration.delta.helpers import read

        try:
            table = read(f"{self.path}/dw/orders", key=("id", "src"))
        except Exception:  # noqa: BLE001 - not created yet
            return None
        return {(r["id"], r["src"], r["qty"], r["note"], r.get("extra"))
                for r in table.values()}

    def check_types(self) -> None:
        from deltalake import DeltaTable

        import pyarrow as pa

        schema = DeltaTable(f"{self.path}/dw/orders").to_pyarrow_table().schema
        assert schema.field("qty").type == pa.int64()  # INT and BIGINT shards: BIGINT


@pytest.mark.parametrize("kind", ["postgres", pytest.param("delta", marks=pytest.mark.delta)])
def test_kill_9_through_a_route_of_four_shards(kind, mysql_server, postgres_server, tmp_path,
                                               request):
    if kind == "delta":
        pytest.importorskip("deltalake")
    src = new_database(mysql_server)
    _shards(mysql_server, src)
    target = (_Postgres(postgres_server, request.node.nodeid) if kind == "postgres"
              else _Delta(tmp_path / "lake"))
    state = tmp_path / "state"
    path = tmp_path / "p.toml"
    path.write_text(
        mysql_server.pipeline_toml("t-route", state, src, chunk_size=100)
        + target.sink
        + f"""
[[transform]]
source-table = '{src}\\.order_\\d+'
projection = "*, __table_name__ AS src"
primary-keys = "id, src"

[[route]]
source-table = '{src}\\.order_\\d+'
sink-table = "dw.orders"
""")
    crash_at(str(path), "checkpoint-stored", 2)  # in the snapshot
    stop = threading.Event()
    writer = threading.Thread(target=_changes, args=(mysql_server, src, stop))
    writer.start()
    try:
        kill_at_random(str(path), str(state), times=3, between=(0.0, 0.6))
    finally:
        writer.join()
    want = _source_rows(mysql_server, src)
    # the last run: until the target holds every row and a checkpoint of its own passed
    before = latest_checkpoint(str(state))
    p = hub("run", str(path), "--no-progress")
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline and p.poll() is None:
        time.sleep(0.3)
        if latest_checkpoint(str(state)) > before and target.rows() == want:
            break
    time.sleep(0.5)
    if p.poll() is None:
        p.send_signal(signal.SIGTERM)
    _, err = p.communicate(timeout=60)
    assert p.returncode == 0, err
    assert "resuming from checkpoint" in err
    got = target.rows()
    assert got is not None and len(got) == len(want) and got == want
    target.check_types()
