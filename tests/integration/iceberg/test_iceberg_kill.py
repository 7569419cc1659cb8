"""MySQL -> iceberg exactly once across kill -9: a MariaDB workload of inserts, updates,
deletes and primary-key changes (on a single-column and a composite key) runs while ``hub
run`` is killed at random moments (while staging and committing) and crashed at every phase:
between a durable checkpoint and its commit, inside a table's commit, between two tables'
commits of one checkpoint, after all of them before the staged segments are deleted, and
during maintenance (compaction written, not committed; snapshots
expired, files not yet deleted).  The Iceberg tables then equal the source tables, and each
table's history holds at most one snapshot per checkpoint."""
from __future__ import annotations

import random
import signal
import subprocess
import threading
import time
from collections import Counter
from decimal import Decimal

import pytest

from tests.integration.iceberg.reading import catalog
from tests.integration.mysql.helpers import new_database
from tests.killing import crash_at, hub, kill_at_random, kill_seed, latest_checkpoint

pytestmark = [pytest.mark.integration, pytest.mark.mysql, pytest.mark.iceberg]

SINK = """
[sink]
type = "iceberg"
warehouse = "{dir}/wh"
namespace = "lake"
maintenance-interval = "{maintenance}"
retention = "1s"
"""


def pipeline(tmp, server, db, maintenance="0s") -> str:
    path = tmp / "pipeline.toml"
    path.write_text(server.pipeline_toml("iceberg-kill", tmp / "state", db, parallelism=2,
                                         chunk_size=200)
                    + SINK.format(dir=tmp, maintenance=maintenance))
    return str(path)


def source_rows(server, db) -> dict:
    conn = server.connect(db)
    with conn.cursor() as cur:
        cur.execute("SELECT id, v, s FROM t")
        t = Counter(cur.fetchall())
        cur.execute("SELECT a, b, v, p FROM u")
        u = Counter(cur.fetchall())
    conn.close()
    return {"t": t, "u": u}


def lake_rows(tmp) -> dict:
    cat = catalog(tmp / "wh")
    out = {}
    for name, cols in (("t", ("id", "v", "s")), ("u", ("a", "b", "v", "p"))):
        try:
            rows = cat.load_table(("lake", name)).scan().to_arrow()
        except Exception:  # noqa: BLE001 - not created yet
            out[name] = Counter()
            continue
        out[name] = Counter(zip(*(rows.column(c).to_pylist() for c in cols)))
    return out


def snapshots_per_checkpoint(tmp) -> list[int]:
    """Per table and checkpoint, the number of data snapshots (maintenance left out)."""
    cat = catalog(tmp / "wh")
    counts = []
    for name in ("t", "u"):
        per: Counter = Counter()
        for s in cat.load_table(("lake", name)).snapshots():
            if s.summary.get("hub.maintenance") is None:  # (Summary's "in" is broken)
                per[s.summary["hub.checkpoint-id"]] += 1
        counts += per.values()
    return counts


class Workload(threading.Thread):
    """Random transactions against ``t`` (id) and ``u`` (a, b) until stopped: inserts,
    updates, deletes and key changes."""

    def __init__(self, server, db, seed: int, first_id: int):
        super().__init__(daemon=True)
        self.first_id = first_id
        self.server, self.db, self.rnd = server, db, random.Random(seed)
        self.stop = threading.Event()
        self.error: BaseException | None = None
        self.transactions = 0

    def run(self) -> None:
        try:
            conn = self.server.connect(self.db)
            next_id = self.first_id
            with conn.cursor() as cur:
                while not self.stop.is_set():
                    conn.begin()
                    r = self.rnd.randrange(1000)
                    for _ in range(self.rnd.randint(1, 20)):
                        next_id += 1
                        cur.execute("INSERT INTO t VALUES (%s, %s, %s)", (next_id, r, f"w{r}"))
                    cur.execute("UPDATE t SET v = v + 1 WHERE id %% 50 = %s", (r % 50,))
                    cur.execute("DELETE FROM t WHERE id %% 97 = %s LIMIT 3", (r % 97,))
                    # a key change
                    cur.execute("UPDATE IGNORE t SET id = id + 100000 WHERE id = %s", (r,))
                    cur.execute("INSERT INTO u VALUES (%s, %s, %s, %s) ON DUPLICATE KEY UPDATE "
                                "v = v + 1", (r % 50, f"k{r % 3}", r, Decimal("1.50")))
                    cur.execute("UPDATE IGNORE u SET b = CONCAT(b, 'x') "
                                "WHERE a = %s AND LENGTH(b) < 6",
                                (r % 50,))
                    cur.execute("DELETE FROM u WHERE a = %s AND v %% 2 = 0", ((r + 7) % 50,))
                    conn.commit()
                    self.transactions += 1
                    time.sleep(0.01)
            conn.close()
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            self.error = exc


def run_until_equal(path, tmp, server, db, timeout=120.0) -> str:
    p = hub("run", path, "--no-progress")
    deadline = time.monotonic() + timeout
    expected = source_rows(server, db)
    while time.monotonic() < deadline and p.poll() is None:
        if lake_rows(tmp) == expected:
            break
        time.sleep(0.5)
    time.sleep(1.0)  # a replay applied twice would show now
    if p.poll() is None:
        p.send_signal(signal.SIGTERM)
    _, err = p.communicate(timeout=60)
    assert p.returncode == 0, err
    return err


@pytest.fixture
def db(mysql_server):
    db = new_database(mysql_server)
    conn = mysql_server.connect(db)
    with conn.cursor() as cur:
        cur.execute("CREATE TABLE t (id INT PRIMARY KEY, v INT, s VARCHAR(20))")
        cur.execute("CREATE TABLE u (a INT, b VARCHAR(10), v INT, p DECIMAL(8,2), "
                    "PRIMARY KEY (a, b))")
        cur.executemany("INSERT INTO t VALUES (%s, %s, %s)",
                        [(i, i % 13, f"s{i}") for i in range(3000)])
    conn.close()
    return db


def _crash(path, tmp, point, offset=2):
    crash_at(path, point, latest_checkpoint(str(tmp / "state")) + offset)


def _crash_anywhere(path, point):
    """Run until crash point ``point`` (of any checkpoint) kills the process."""
    p = hub("run", path, "--no-progress", env={"HUB_CRASH_AT": point})
    try:
        _, err = p.communicate(timeout=90)
    except subprocess.TimeoutExpired:
        p.kill()
        err = p.communicate()[1]
    assert p.returncode == -signal.SIGKILL, f"crash point {point} not reached: {err}"


def _with_workload(server, db, seed, steps, first_id) -> None:
    work = Workload(server, db, seed, first_id)
    work.start()
    try:
        steps()
    finally:
        work.stop.set()
        work.join(30)
    assert work.error is None, work.error
    assert work.transactions > 10, f"seed {seed}: the workload hardly ran"


def test_kill_9_at_every_phase(tmp_path, mysql_server, db):
    seed = kill_seed()
    state = str(tmp_path / "state")
    # staging and committing: history kept whole (no maintenance) to count snapshots
    path = pipeline(tmp_path, mysql_server, db, maintenance="0s")

    def commits():
        _crash(path, tmp_path, "checkpoint-stored")            # durable, not committed
        _crash_anywhere(path, "iceberg-files-staged")         # inserts staged as data files
        _crash_anywhere(path, "iceberg-before-table-commit")  # files written, no snapshot
        _crash_anywhere(path, "iceberg-table-committed")      # between two tables' commits
        _crash_anywhere(path, "iceberg-checkpoint-committed")  # committed, log not deleted
        kill_at_random(path, state, times=3, between=(0.0, 0.8))

    _with_workload(mysql_server, db, seed, commits, first_id=10_000)
    err = run_until_equal(path, tmp_path, mysql_server, db)
    assert "resuming from checkpoint" in err
    assert lake_rows(tmp_path) == source_rows(mysql_server, db), f"seed {seed}"
    assert max(snapshots_per_checkpoint(tmp_path)) == 1, f"seed {seed}"

    # maintenance: compaction and snapshot expiry killed in the middle
    path = pipeline(tmp_path, mysql_server, db, maintenance="300ms")

    def maintenance():
        _crash_anywhere(path, "iceberg-compaction-written")
        _crash_anywhere(path, "iceberg-expired")
        kill_at_random(path, state, times=2, between=(0.0, 0.8), min_kills=1)

    _with_workload(mysql_server, db, seed + 1, maintenance, first_id=500_000)
    run_until_equal(path, tmp_path, mysql_server, db)
    assert lake_rows(tmp_path) == source_rows(mysql_server, db), f"seed {seed}"
