"""MySQL/MariaDB -> Delta, exactly once, proven with kill -9: while a workload inserts,
updates, deletes and changes primary keys in two tables, the pipeline is killed at random
moments and at every phase of a commit (checkpoint durable but not committed, between the
two tables' commits of one checkpoint, between the MERGE and the append of new keys of a
checkpoint committed in two, after all tables but before the staged segments are deleted,
during maintenance).  The Delta tables end equal to the source tables (read by
deltalake and Polars), and each table's history holds at most one commit per checkpoint of a
job."""
from __future__ import annotations

import random
import signal
import subprocess
import threading
import time
from collections import Counter

import pytest

pytest.importorskip("deltalake")
pytest.importorskip("polars")

from tests.integration.delta.helpers import read  # noqa: E402
from tests.integration.mysql.helpers import new_database  # noqa: E402
from tests.killing import hub, kill_at_random, kill_seed  # noqa: E402

pytestmark = [pytest.mark.integration, pytest.mark.delta, pytest.mark.mysql]

TABLES = ("items", "people")
SINK = """\
[sink]
type = "delta"
path = "{lake}"
maintenance-interval = "{maintenance}"
retention = "0s"
target-file-size = "1MB"
new-keys-append-threshold = {threshold}
# the log stays (maintenance would clean it up to its checkpoint): its commits are checked
table-properties = {{ "delta.logRetentionDuration" = "interval 1 days" }}
"""


class Workload:
    """Random inserts, updates, deletes and primary-key changes on both tables, in
    transactions across both, in a thread until :meth:`stop`."""

    def __init__(self, server, db: str, seed: int):
        self.server, self.db = server, db
        self.rnd = random.Random(seed)
        self.next_id = 1000
        self.done = threading.Event()
        self.error: BaseException | None = None
        self.ops = Counter()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> Workload:
        self.thread.start()
        return self

    def stop(self) -> Counter:
        self.done.set()
        self.thread.join(30)
        if self.error:
            raise self.error
        return self.ops

    def _run(self) -> None:
        conn = self.server.connect()
        try:
            while not self.done.is_set():
                with conn.cursor() as cur:
                    # both tables in every transaction: every checkpoint of the binlog phase
                    # commits both (the crash between two tables' commits needs that)
                    for table in TABLES + tuple(self.rnd.choices(TABLES, k=self.rnd.randint(0, 4))):
                        self._change(cur, table)
                    conn.commit()
                time.sleep(0.005)
        except BaseException as exc:  # noqa: BLE001 - re-raised by stop()
            self.error = exc
        finally:
            conn.close()

    def _change(self, cur, table: str) -> None:
        db, rnd = self.db, self.rnd
        kind = rnd.choices(("insert", "update", "delete", "key"), (4, 4, 2, 1))[0]
        pick = f"SELECT id FROM {db}.{table} ORDER BY RAND({rnd.randint(0, 10**6)}) LIMIT 1"
        if kind == "insert":
            self.next_id += 1
            cur.execute(f"INSERT INTO {db}.{table} (id, name, qty, price, at) VALUES "
                        f"(%s, %s, %s, %s, NOW(6))",
                        (self.next_id, f"n{self.next_id}", rnd.randint(0, 99), "1.50"))
        elif cur.execute(pick):
            (key,) = cur.fetchone()
            if kind == "update":
                cur.execute(f"UPDATE {db}.{table} SET name = CONCAT(name, '+'), qty = qty + 1, "
                            f"price = NULL WHERE id = %s", (key,))
            elif kind == "delete":
                cur.execute(f"DELETE FROM {db}.{table} WHERE id = %s", (key,))
            else:
                self.next_id += 1
                cur.execute(f"UPDATE {db}.{table} SET id = %s WHERE id = %s",
                            (self.next_id, key))
        self.ops[kind] += 1


def source_rows(conn, db: str, table: str) -> dict:
    conn.commit()  # a fresh snapshot of the source's rows
    with conn.cursor() as cur:
        cur.execute(f"SELECT id, name, qty, price, at FROM {db}.{table}")
        return {r[0]: dict(zip(("id", "name", "qty", "price", "at"), r)) for r in cur.fetchall()}


def delta_rows(lake, db: str, table: str) -> dict:
    try:
        return read(f"{lake}/{db}/{table}")
    except Exception:  # noqa: BLE001 - not created yet
        return {}


def wait_equal(lake, conn, db: str, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        want = {t: source_rows(conn, db, t) for t in TABLES}
        got = {t: delta_rows(lake, db, t) for t in TABLES}
        if got == want or time.monotonic() > deadline:
            break
        time.sleep(0.3)
    for t in TABLES:
        assert got[t] == want[t], f"{db}.{t}: Delta table differs from the source"


def assert_one_commit_per_checkpoint(lake, db: str) -> None:
    """Every table's history: at most one commit per (job, checkpoint) -- per part, for a
    checkpoint committed as a MERGE then an append of new keys."""
    from deltalake import DeltaTable

    for t in TABLES:
        tags = [(c["hub.app"], int(c["hub.checkpoint"]), c.get("hub.part"))
                for c in DeltaTable(f"{lake}/{db}/{t}").history() if "hub.checkpoint" in c]
        assert tags, f"{t}: no commit carries a checkpoint"
        twice = [tag for tag, n in Counter(tags).items() if n > 1]
        assert not twice, f"{db}.{t}: checkpoints committed twice: {twice}"


@pytest.fixture
def source(mysql_server):
    db = new_database(mysql_server)
    conn = mysql_server.connect()
    with conn.cursor() as cur:
        for i, t in enumerate(TABLES):
            cur.execute(f"CREATE TABLE {db}.{t} (id BIGINT PRIMARY KEY, name VARCHAR(200), "
                        f"qty INT, price DECIMAL(10,2), at DATETIME(6))")
            cur.executemany(f"INSERT INTO {db}.{t} VALUES (%s, %s, %s, %s, %s)",
                            [(k, f"{t}-{k}", k % 7, f"{k}.25",
                              f"2024-01-01 00:00:{k % 60:02d}.{k:06d}")
                             for k in range(1, 301 + 100 * i)])
    conn.commit()
    yield db, conn
    conn.close()


def pipeline(tmp_path, mysql_server, db: str, maintenance: str = "0s",
             chunk_size: int = 60, threshold: int = 100_000,
             interval: str = "200ms") -> tuple[str, str]:
    lake = str(tmp_path / "lake")
    path = tmp_path / "pipeline.toml"
    head = mysql_server.pipeline_toml("mysql-delta", tmp_path / "state", db, 2,
                                      chunk_size=chunk_size)
    head = head.replace('interval = "200ms"\ndir', f'interval = "{interval}"\ndir')
    path.write_text(head + SINK.format(lake=lake, maintenance=maintenance, threshold=threshold))
    return str(path), lake


def crash(path: str, point: str, timeout: float = 120) -> None:
    """Run until crash point ``point`` (``name`` or ``name:checkpoint``) kills the process;
    asserts it did, with the pipeline's log when it did not."""
    p = hub("run", path, "--no-progress", env={"HUB_CRASH_AT": point})
    try:
        _, err = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        p.kill()
        raise AssertionError(f"crash point {point} not reached in {timeout:.0f}s: "
                             f"{p.communicate()[1][-3000:]}") from None
    assert p.returncode == -signal.SIGKILL, f"crash point {point} not reached: {err[-3000:]}"


def finish(path: str, lake: str, conn, db: str) -> None:
    """Run the pipeline once more until the tables equal the source, then stop it."""
    p = hub("run", path, "--no-progress")
    try:
        wait_equal(lake, conn, db)
    finally:
        p.send_signal(signal.SIGTERM)
        _, err = p.communicate(timeout=60)
    assert p.returncode == 0, err
    assert_one_commit_per_checkpoint(lake, db)


def test_kill_9_at_random_moments(tmp_path, mysql_server, source):
    db, conn = source
    path, lake = pipeline(tmp_path, mysql_server, db, maintenance="1s")
    work = Workload(mysql_server, db, kill_seed()).start()
    try:
        kill_at_random(path, str(tmp_path / "state"), times=4, between=(0.0, 1.2))
    finally:
        ops = work.stop()
    assert ops["key"] and ops["delete"] and ops["update"], ops
    finish(path, lake, conn, db)


@pytest.mark.parametrize("point", [
    "checkpoint-stored",            # durable, not committed
    "delta-table-committed",        # the first table committed, the second not
    "delta-checkpoint-committed",   # all tables committed, the segments still there
    "delta-files-staged",           # staged data files of inserts, not yet committed
    "delta-changes-committed",      # a table's other changes committed, its files not added
    "delta-files-added",            # the snapshot's staged files added, side records kept
])
def test_crash_at_every_phase_of_a_commit(tmp_path, mysql_server, source, point):
    db, conn = source
    # one chunk per table: the snapshot is over within the first checkpoints; from then on
    # the point is reached at the first checkpoint from 6 on that commits (both tables, for
    # the second table's point): on a loaded machine the workload can leave one empty
    # a table's other changes committed before its staged inserts: two commits, allowed
    threshold = 1 if point == "delta-changes-committed" else 100_000
    # staged files added as they are: the snapshot's (a binlog checkpoint with inserts of a
    # table and no other change of it is rare)
    at = "1+" if point == "delta-files-added" else "6+"
    path, lake = pipeline(tmp_path, mysql_server, db, chunk_size=1000, threshold=threshold)
    work = Workload(mysql_server, db, kill_seed()).start()
    try:
        crash(path, f"{point}:{at}")
    finally:
        work.stop()
    finish(path, lake, conn, db)


def test_inserts_and_changes_of_their_keys_in_one_checkpoint(tmp_path, mysql_server, source):
    """After the snapshot (its reads staged as data files and added), one source transaction
    inserts keys and updates, deletes and re-keys them and snapshot rows: the staged inserts
    collide with the checkpoint's other changes and are merged (the collision path, said in
    the log); the tables end equal to the source, each checkpoint committed once."""
    db, conn = source
    # two commits allowed (threshold 1): only the collision keeps the staged rows from being
    # added as they are
    path, lake = pipeline(tmp_path, mysql_server, db, chunk_size=1000, interval="1s",
                          threshold=1)
    p = hub("run", path, "--no-progress")
    try:
        wait_equal(lake, conn, db)  # the snapshot is in
        with conn.cursor() as cur:
            for t in TABLES:
                cur.executemany(f"INSERT INTO {db}.{t} (id, name, qty, price, at) VALUES "
                                f"(%s, %s, %s, '1.50', NOW(6))",
                                [(k, f"n{k}", k % 5) for k in range(5000, 5010)])
                cur.execute(f"UPDATE {db}.{t} SET qty = qty + 1 WHERE id BETWEEN 5000 AND 5004 "
                            f"OR id BETWEEN 1 AND 3")
                cur.execute(f"DELETE FROM {db}.{t} WHERE id IN (5005, 5006, 4)")
                cur.execute(f"UPDATE {db}.{t} SET id = id + 1000 WHERE id IN (5007, 5)")
        conn.commit()
        wait_equal(lake, conn, db)
    finally:
        p.send_signal(signal.SIGTERM)
        _, err = p.communicate(timeout=60)
    assert p.returncode == 0, err
    assert "a staged key changed again in the checkpoint" in err, \
        "no staged key collided: " + err[-2000:]
    assert_one_commit_per_checkpoint(lake, db)


@pytest.mark.parametrize("point", ["delta-compacted", "delta-maintained"])
def test_crash_during_maintenance(tmp_path, mysql_server, source, point):
    db, conn = source
    # maintenance after every commit that wrote a table; crash in the first one
    path, lake = pipeline(tmp_path, mysql_server, db, maintenance="1ms")
    work = Workload(mysql_server, db, kill_seed()).start()
    try:
        crash(path, point)
    finally:
        work.stop()
    finish(path, lake, conn, db)


def test_crash_between_the_merge_and_the_append_of_new_keys(tmp_path, mysql_server, source):
    """Every checkpoint with a new key besides other changes is committed as a MERGE then
    an append (threshold 1); killed between the two, the restart appends only: the tables
    equal the source, each part of a checkpoint committed once."""
    from deltalake import DeltaTable

    db, conn = source
    path, lake = pipeline(tmp_path, mysql_server, db, chunk_size=1000, threshold=1)
    work = Workload(mysql_server, db, kill_seed()).start()
    try:
        crash(path, "delta-part-committed")
    finally:
        work.stop()
    finish(path, lake, conn, db)
    parts = [c for t in TABLES for c in DeltaTable(f"{lake}/{db}/{t}").history()
             if c.get("hub.part") == "merge"]
    assert parts, "no checkpoint was committed in two parts"
