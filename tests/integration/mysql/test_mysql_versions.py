"""Sink versions (``ChangeBatch.versions``, Elasticsearch's external versions, HBase cell
timestamps) never go backwards.  They come from binlog positions, which restart lower on
another server: after a failover by GTID to a replica with a shorter binlog they are shifted
(the shift lives in the binlog split, so it survives checkpoints); a binlog reset under a
running stream (MariaDB's dump thread then waits at its old position for good) stops the
pipeline with one line naming both positions and the remedy.  Each test uses MariaDBs of its
own (a replica, RESET MASTER), also when HUB_TEST_MYSQL names an external server; skipped only
where the MariaDB package is not installed."""
from __future__ import annotations

import time

import pytest

from runtime.errors import TerminalError
from sources.mysql import watchdog
from sources.mysql.protocol import BinlogPurgedError
from tests.conformance import harness
from tests.integration.mysql.helpers import Running, replay, source_config, table_rows
from tests.servers import mariadb

pytestmark = [pytest.mark.integration, pytest.mark.mysql]


@pytest.fixture
def servers():
    # MariaDBs of its own (a replica to fail over to, RESET MASTER), even with HUB_TEST_MYSQL
    mariadb.skip_unless_installed_here()
    owners: list = []

    def start(**kw):
        owner = mariadb.ThrowawayMariaDB(**kw)
        owners.append(owner)
        return owner.start()

    try:
        yield start
    finally:
        for owner in owners:
            owner.stop()


def record_versions(monkeypatch) -> list[tuple]:
    """(table, key, version, op) of every event the reference sink is given, in order."""
    seen: list[tuple] = []
    real = harness._CollectWriter.write

    def write(self, batch):
        real(self, batch)
        if batch.versions is not None:
            for op, v, row in zip(batch.ops, batch.versions, batch.rows()):
                seen.append((batch.table, row[0], int(v), op))

    monkeypatch.setattr(harness._CollectWriter, "write", write)
    return seen


def rising_per_key(seen: list[tuple]) -> None:
    last: dict = {}
    for table, key, version, op in seen:
        k = (table, key)
        assert k not in last or version > last[k], \
            f"{table} key {key}: version {version} ({op}) after {last[k]}"
        last[k] = version


def wait(check, what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"no {what} within {timeout}s"
        time.sleep(0.1)


def replicate(r, primary) -> None:
    """Make the server of connection ``r`` a GTID replica of ``primary``."""
    with r.cursor() as cur:
        cur.execute("RESET MASTER")   # the replica's own setup statements out of its binlog
        cur.execute("SET GLOBAL gtid_slave_pos = ''")
        cur.execute(f"CHANGE MASTER TO MASTER_HOST = '127.0.0.1', MASTER_PORT = {primary.port}, "
                    "MASTER_USER = 'root', MASTER_PASSWORD = 'hub', MASTER_USE_GTID = slave_pos")
        cur.execute("START SLAVE")


def promote(r) -> None:
    with r.cursor() as cur:
        cur.execute("STOP SLAVE")
        cur.execute("RESET SLAVE ALL")


def caught_up(p, r) -> bool:
    with p.cursor() as cur:
        cur.execute("SELECT @@global.gtid_binlog_pos")
        want = cur.fetchone()[0]
    with r.cursor() as cur:
        cur.execute("SELECT @@global.gtid_slave_pos")
        return cur.fetchone()[0] == want


def test_failover_to_a_replica_with_a_shorter_binlog_keeps_versions_rising(servers, monkeypatch):
    primary = servers()
    replica = servers(server_id=2, extra_args=("--log-slave-updates",))
    p, r = primary.connect(), replica.connect()
    with p.cursor() as cur:
        for _ in range(3):            # the primary's binlog is files ahead of the replica's
            cur.execute("FLUSH BINARY LOGS")
        cur.execute("CREATE DATABASE shop")
        cur.execute("CREATE TABLE shop.t (id INT PRIMARY KEY, v INT NOT NULL)")
        cur.executemany("INSERT INTO shop.t VALUES (%s, 0)", [(i,) for i in range(10)])
    replicate(r, primary)

    def replica_has(n: int) -> bool:
        with r.cursor() as cur:
            try:
                cur.execute("SELECT SUM(v) FROM shop.t")
            except Exception:  # noqa: BLE001 - not replicated yet
                return False
            return (cur.fetchone()[0] or 0) == n

    seen = record_versions(monkeypatch)
    config = source_config(primary, "shop")
    run = Running(config, parallelism=1)
    with run:
        run.wait_for(lambda ev: len(ev) >= 10)
        with p.cursor() as cur:
            for _ in range(3):
                cur.execute("UPDATE shop.t SET v = v + 1")
        run.wait_for(lambda ev: len(ev) >= 40)
    with p.cursor() as cur:           # while the pipeline is down, then the primary fails
        cur.execute("UPDATE shop.t SET v = v + 1 WHERE id < 5")
    wait(lambda: replica_has(35), "replication of the last updates")
    promote(r)
    with r.cursor() as cur:
        cur.execute("UPDATE shop.t SET v = v + 1")
        cur.execute("SHOW MASTER STATUS")
        assert int(cur.fetchone()[0].rpartition(".")[2]) < 4, "the replica's binlog is not shorter"
    run = Running(source_config(replica, "shop"), parallelism=1, state_dir=run.dir, store=run.store)
    with run:
        with r.cursor() as cur:
            cur.execute("UPDATE shop.t SET v = v + 1 WHERE id >= 5")
        expected = table_rows(replica, "shop", "t", config)
        run.wait_for(lambda ev: replay(ev) == expected)
    rising_per_key(seen)
    assert len(seen) == 10 + 30 + 5 + 10 + 5


def test_binlog_reset_under_a_running_stream_stops_with_the_positions(servers, monkeypatch):
    server = servers()
    conn = server.connect()
    with conn.cursor() as cur:
        cur.execute("CREATE DATABASE shop")
        cur.execute("CREATE TABLE shop.t (id INT PRIMARY KEY, v INT NOT NULL)")
        cur.executemany("INSERT INTO shop.t VALUES (%s, 0)", [(i,) for i in range(10)])
    seen = record_versions(monkeypatch)
    monkeypatch.setattr(watchdog, "MIN_PERIOD_S", 0.5)   # 10 heartbeat periods: 2s
    config = source_config(server, "shop")
    run = Running(config, parallelism=1)
    with run:
        run.wait_for(lambda ev: len(ev) >= 10)
        with conn.cursor() as cur:
            cur.execute("UPDATE shop.t SET v = v + 1")
        run.wait_for(lambda ev: len(ev) >= 20)
        with conn.cursor() as cur:
            cur.execute("RESET MASTER")
            cur.execute("UPDATE shop.t SET v = v + 1")   # at positions below the stream's
        run.thread.join(40)
        assert not run.thread.is_alive(), "the stream stalled silently after RESET MASTER"
    err = run.error
    assert isinstance(err, TerminalError) and not err.transient, err
    line = str(err)
    assert "RESET MASTER" in line and "--fresh" in line and "mysql-bin.000001" in line, line
    assert "empty" in line and "\n" not in line
    rising_per_key(seen)
    # restarted as it is: the position is gone, the same remedy
    run = Running(config, parallelism=1, state_dir=run.dir, store=run.store)
    with run:
        run.thread.join(30)
    assert isinstance(run.error, BinlogPurgedError), run.error
    assert "drop the target tables" in str(run.error)


ES_SINK = """\
[sink]
type = "elasticsearch"
hosts = ["{url}"]
index = "{prefix}-{{table}}"
compatibility-mode = {compat}
"""



@pytest.mark.elasticsearch
def test_failover_into_elasticsearch_ends_equal_to_the_new_primary(tmp_path, servers,
                                                                   elasticsearch_server):
    """End to end: MariaDB -> Elasticsearch (external versions from binlog positions), a
    failover to a replica whose binlog is files behind, then updates of the same keys there:
    the index ends equal to the new primary (versions that went backwards made Elasticsearch
    refuse every later change with 409)."""
    import signal
    import uuid

    from tests.killing import hub

    primary = servers()
    replica = servers(server_id=2, extra_args=("--log-slave-updates",))
    p, r = primary.connect(), replica.connect()
    with p.cursor() as cur:
        for _ in range(3):
            cur.execute("FLUSH BINARY LOGS")
        cur.execute("CREATE DATABASE shop")
        cur.execute("CREATE TABLE shop.items (id BIGINT PRIMARY KEY, v INT NOT NULL)")
        cur.executemany("INSERT INTO shop.items VALUES (%s, 0)", [(i,) for i in range(20)])
    replicate(r, primary)
    prefix = f"myfo-{uuid.uuid4().hex[:8]}"
    index = f"{prefix}-items"
    compat = elasticsearch_server.compatibility_toml()
    path = tmp_path / "pipeline.toml"

    def run(server):
        path.write_text(server.pipeline_toml("mysql-es-failover", tmp_path / "state", "shop")
                        + ES_SINK.format(url=elasticsearch_server.url, prefix=prefix,
                                         compat=compat))
        return hub("run", str(path), "--no-progress")

    def rows(conn) -> dict:
        with conn.cursor() as cur:
            cur.execute("SELECT id, v FROM shop.items")
            return {str(i): {"id": i, "v": v} for i, v in cur.fetchall()}

    def index_rows() -> dict:
        es = elasticsearch_server.client()
        try:
            if not es.indices.exists(index=index):
                return {}
            es.indices.refresh(index=index)
            return {h["_id"]: h["_source"] for h in es.search(index=index, size=1000)["hits"]["hits"]}
        finally:
            es.close()

    def equal_to(conn, proc, timeout=60.0) -> None:
        want = rows(conn)
        deadline = time.monotonic() + timeout
        while index_rows() != want and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.3)
        assert index_rows() == want

    def stop(proc) -> None:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err

    proc = run(primary)
    try:
        equal_to(p, proc)
        with p.cursor() as cur:
            cur.execute("UPDATE shop.items SET v = v + 1")
        equal_to(p, proc)
    finally:
        stop(proc)
    with p.cursor() as cur:
        cur.execute("UPDATE shop.items SET v = v + 10 WHERE id < 10")
    wait(lambda: caught_up(p, r), "replication")
    promote(r)
    with r.cursor() as cur:
        cur.execute("UPDATE shop.items SET v = v + 100")
        cur.execute("DELETE FROM shop.items WHERE id = 19")
    proc = run(replica)
    try:
        equal_to(r, proc)
        with r.cursor() as cur:
            cur.execute("UPDATE shop.items SET v = v + 1000 WHERE id >= 10")
        equal_to(r, proc)
    finally:
        stop(proc)
