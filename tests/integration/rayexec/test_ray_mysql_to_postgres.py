"""The issue's proof on the Ray executor: a MariaDB snapshot-and-binlog pipeline into
PostgreSQL (``[pipeline] executor = "ray"``, parallelism 2: one subtask pair on each node of
the two-node cluster of tests/servers/ray.py), the worker node's processes killed with
``kill -9`` while the snapshot is copied and the binlog flows; the job master's restart
strategy (``[restart]``, as ``hub run`` gives it) restores from the latest completed
checkpoint on the node left, and the target table ends equal to
the source table.

Exactly once, not only the same final state: a row trigger on the target logs every insert
and update, so a committed chunk or binlog event written a second time after the restore shows
(a second INSERT of an id, or an UPDATE of an id the source never updated); and no prepared
transaction is left behind.
"""
from __future__ import annotations

import threading
import time

import pytest

pytest.importorskip("ray")

from hub.config import load_pipeline  # noqa: E402
from hub.runner import build_job, make_connectors  # noqa: E402
from runtime.checkpoint.storage import CheckpointStorage  # noqa: E402
from runtime.executor.ray.executor import RayExecutor  # noqa: E402
from runtime.executor.restart import RestartStrategy  # noqa: E402
from runtime.metrics import PipelineMetrics  # noqa: E402
from runtime.retry import Backoff  # noqa: E402
from tests.integration.jdbc.databases import LOGGED_ORDERS as TARGET, create_database  # noqa: E402
from tests.integration.mysql.helpers import orders_table  # noqa: E402
from tests.servers.ray import ray_cluster  # noqa: E402

pytestmark = [pytest.mark.integration, pytest.mark.ray, pytest.mark.jdbc]

ROWS = 40_000  # enough that the snapshot outlasts the first checkpoints
PIPELINE = """
[pipeline]
name = "ray-kill"
parallelism = 2
executor = "ray"
ray-address = "{address}"
[checkpoint]
interval = "200ms"
timeout = "30s"
dir = "{dir}/state"
[source]
{connection}
tables = ["{db}\\\\.orders"]
chunk-size = 1000
heartbeat-interval = "200ms"
[sink]
type = "jdbc"
url = "{url}"
batch-size = 1000
"""


class BinlogWriter(threading.Thread):
    """Changes the source table while the pipeline runs, one transaction per round: 40 new
    rows, 10 updates of rows whose id ends in 3 and 5 deletes of rows whose id ends in 7
    (so that only those ids may ever be updated in the target)."""

    def __init__(self, server, db: str):
        super().__init__(name="binlog-writer", daemon=True)
        self.server, self.db = server, db
        self.rounds = 0
        self.stop = threading.Event()
        self.error: BaseException | None = None

    def run(self) -> None:
        conn = self.server.connect()
        try:
            with conn.cursor() as cur:
                while not self.stop.is_set():
                    r = self.rounds
                    new = range(ROWS + r * 40, ROWS + (r + 1) * 40)
                    cur.execute(f"INSERT INTO {self.db}.orders VALUES " + ",".join(
                        f"({i}, 'new {i}', {i % 1000}.50)" for i in new))
                    # 10 ids ending in 3, 5 ending in 7, a different stretch every round
                    base = (r * 100) % ROWS
                    cur.execute(f"UPDATE {self.db}.orders SET amount = amount + 1, "
                                f"name = 'updated {r}' WHERE id BETWEEN {base} AND "
                                f"{base + 99} AND id % 10 = 3")
                    cur.execute(f"DELETE FROM {self.db}.orders WHERE id BETWEEN {base} AND "
                                f"{base + 49} AND id % 10 = 7")
                    conn.commit()
                    self.rounds += 1
                    time.sleep(0.05)
        except BaseException as exc:  # noqa: BLE001 - the test says it
            self.error = exc
        finally:
            conn.close()


@pytest.fixture
def source(mysql_server):
    return orders_table(mysql_server, ROWS)


def source_rows(server, db: str) -> set[tuple]:
    conn = server.connect()
    try:
        with conn.cursor() as cur:
            cur.execute(f"SELECT id, name, amount FROM {db}.orders")
            return set(cur.fetchall())
    finally:
        conn.close()


def test_kill_9_of_the_worker_node_mid_snapshot_and_binlog_mysql_to_postgres(
        mysql_server, postgres_server, source, tmp_path, request):
    owner = ray_cluster().owner
    owner.ensure_whole()
    pg = create_database("postgres", postgres_server, request.node.nodeid)
    with pg.connect() as conn:
        conn.execute(TARGET)
    path = tmp_path / "pipeline.toml"
    path.write_text(PIPELINE.format(address=owner.address, dir=tmp_path, db=source, url=pg.url,
                                    connection=mysql_server.source_toml()))
    spec = load_pipeline(str(path))
    storage = CheckpointStorage(spec.checkpoint.dir)
    lines: list[str] = []  # the job master's restart lines
    backoff = Backoff(0.5, 2.0, 5)
    strategy = RestartStrategy(lambda m: RayExecutor(metrics=m, address=owner.address,
                                                     restart=backoff, notify=lines.append),
                               backoff, storage, PipelineMetrics(2))
    result: list = []

    def run() -> None:
        try:
            result.append(strategy.run_built(
                lambda restore: build_job(spec, restore, storage, make_connectors(spec)), None))
        except BaseException as exc:  # noqa: BLE001 - the test says it
            result.append(exc)

    runner = threading.Thread(target=run, daemon=True)
    writer = BinlogWriter(mysql_server, source)
    runner.start()
    writer.start()
    killed_at_rows = None
    try:
        deadline = time.monotonic() + 60
        # mid-way: a checkpoint committed (rows visible), the snapshot not yet all there
        while storage.latest() is None or pg.visible("orders") == 0:
            assert time.monotonic() < deadline and runner.is_alive(), (
                f"no committed checkpoint in 60 s: {result}")
            time.sleep(0.05)
        killed_at_rows = pg.visible("orders")
        executor = strategy.current
        assert executor is not None and len(set(executor.nodes)) == 2, (
            "the subtask pairs are not spread over both nodes: the kill would prove nothing")
        owner.kill_worker_node()
        rounds = writer.rounds
        while writer.rounds < rounds + 10 and writer.is_alive():  # changes after the kill too
            time.sleep(0.05)
        writer.stop.set()
        writer.join(timeout=30)
        assert writer.error is None, writer.error
        expected = source_rows(mysql_server, source)
        deadline = time.monotonic() + 120
        while pg.rows("orders") != expected:
            assert time.monotonic() < deadline and runner.is_alive(), (
                f"the target does not equal the source 120 s after the kill: {result} "
                f"{len(pg.rows('orders'))} rows of {len(expected)}")
            time.sleep(0.2)
        strategy.request_stop()
        runner.join(timeout=60)
        assert not runner.is_alive(), "the job did not stop within 60 s"
    finally:
        writer.stop.set()
        strategy.request_stop()
        owner.add_node()  # whole again for the tests after this one
    assert result and not isinstance(result[0], BaseException), result
    assert lines, "the kill did not make the job restart"
    print(f"killed with {killed_at_rows} of {ROWS} snapshot rows committed; restarts: {lines}")
    assert pg.rows("orders") == expected
    twice = pg.query("SELECT id FROM writes WHERE op = 'INSERT' GROUP BY id HAVING count(*) > 1")
    assert twice == [], f"ids inserted twice: {twice[:10]}"
    replayed = pg.query("SELECT DISTINCT id FROM writes WHERE op = 'UPDATE' AND id % 10 <> 3")
    assert replayed == [], f"rows written again (updates of ids never updated): {replayed[:10]}"
    assert pg.prepared("hub:ray-kill:") == []
