"""Schema changes carry their meaning, MariaDB -> PostgreSQL and MariaDB -> MariaDB through
``hub run``: a column added with ``NOT NULL DEFAULT x`` (or NOT NULL alone, which MySQL fills
with 0 / '' / the first ENUM value) reads in the rows that existed before the DDL what it
reads at the source, not NULL."""
from __future__ import annotations

import signal
import time

import pytest

from tests.integration.jdbc.databases import create_database
from tests.integration.mysql.helpers import new_database
from tests.killing import hub, reaped

pytestmark = [pytest.mark.integration, pytest.mark.jdbc, pytest.mark.mysql]

ROWS = 2000
SINK = """\
[sink]
type = "jdbc"
url = "{url}"
"""
ALTER = ("ALTER TABLE {db}.items ADD COLUMN qty INT NOT NULL DEFAULT 7, "
         "ADD COLUMN `la bel` VARCHAR(20) NOT NULL DEFAULT 'it''s \\\\ new', "
         "ADD COLUMN n BIGINT NOT NULL, ADD COLUMN e ENUM('p', 'q') NOT NULL, "
         "ADD COLUMN price DECIMAL(6,2) DEFAULT -1.50, ADD COLUMN maybe INT")


def _wait(check, what: str, p, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        assert p.poll() is None, f"the pipeline ended: {p.communicate()[1]}"
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.mark.parametrize("flavor", ["postgres", "mariadb"])
def test_added_columns_keep_their_defaults_in_existing_rows(flavor, mysql_server, tmp_path,
                                                            request):
    target = create_database(flavor, request.getfixturevalue(
        "postgres_server" if flavor == "postgres" else "mysql_server"), request.node.nodeid)
    db = new_database(mysql_server)
    conn = mysql_server.connect()
    with conn.cursor() as cur:
        cur.execute(f"CREATE TABLE {db}.items (id INT PRIMARY KEY, v INT)")
        cur.executemany(f"INSERT INTO {db}.items VALUES (%s, %s)",
                        [(i, i * 10) for i in range(1, ROWS + 1)])
    path = tmp_path / "pipeline.toml"
    text = mysql_server.pipeline_toml("ddl-defaults", tmp_path / "state", db, 2,
                                      startup_mode="initial")
    # evolve: the DDL as it is (NOT NULL too); lenient, the default, makes added columns
    # nullable (tests/integration/transform/test_transform_schema_modes.py)
    text = text.replace("[checkpoint]", 'schema-change-behavior = "evolve"\n[checkpoint]', 1)
    path.write_text(text + SINK.format(url=target.url))
    with reaped(hub("run", str(path), "--no-progress")) as p:
        _wait(lambda: target.visible("items") == ROWS, "the snapshot in the target", p)
        with conn.cursor() as cur:
            cur.execute(ALTER.format(db=db))
            cur.execute(f"INSERT INTO {db}.items (id, v, qty, `la bel`, n, e, price, maybe) "
                        f"VALUES (0, 0, 1, 'one', 2, 'q', 3.25, 4)")
        _wait(lambda: target.visible("items") == ROWS + 1, "the row after the DDL", p)
        p.send_signal(signal.SIGTERM)
        err = p.communicate(timeout=60)[1]
    assert p.returncode == 0, err
    columns = "id, v, qty, " + target.q("la bel") + ", n, e, price, maybe"
    with conn.cursor() as cur:
        cur.execute(f"SELECT {columns.replace(chr(34), '`')} FROM {db}.items")
        source = {tuple(r) for r in cur.fetchall()}
    got = target.rows("items", columns)
    assert len(source) == ROWS + 1
    wrong = source - got
    assert not wrong, f"{len(wrong)} rows differ from the source, e.g. {sorted(wrong)[:3]}"
    if flavor == "postgres":
        nullable = dict(target.query(
            "SELECT column_name, is_nullable FROM information_schema.columns WHERE "
            "table_name = 'items'"))
        assert nullable["qty"] == "NO" and nullable["maybe"] == "YES"


def test_append_mode_with_ddl_and_kill_9_writes_every_row_once(mysql_server, tmp_path, request):
    """MariaDB -> MariaDB in append mode: rows, a DDL, more rows, kill -9 before the first
    checkpoint, run again.  The XA transaction is not committed early for the DDL: nothing is
    visible before the checkpoint, and the replay after the kill adds no row twice."""
    target = create_database("mariadb", mysql_server, request.node.nodeid)
    db = new_database(mysql_server)
    conn = mysql_server.connect()
    with conn.cursor() as cur:
        cur.execute(f"CREATE TABLE {db}.items (id INT PRIMARY KEY, v INT)")
    path = tmp_path / "pipeline.toml"
    text = (mysql_server.pipeline_toml("ddl-defaults", tmp_path / "state", db, 2,
                                       startup_mode="earliest") + SINK.format(url=target.url))
    # no checkpoint before the kill
    path.write_text(text.replace('interval = "200ms"', 'interval = "10min"')
                    + 'write-mode = "append"\n')
    p = hub("run", str(path), "--no-progress")
    try:
        time.sleep(2)
        with conn.cursor() as cur:
            for i in range(1, 201):
                cur.execute(f"INSERT INTO {db}.items (id, v) VALUES (%s, %s)", (i, i))
                if i == 100:
                    cur.execute(f"ALTER TABLE {db}.items ADD COLUMN w INT NOT NULL DEFAULT 3")
        time.sleep(3)  # the rows before the DDL were flushed for it, long ago
        assert p.poll() is None, p.communicate()[1]
        visible_early = target.visible("items")
    finally:
        p.send_signal(signal.SIGKILL)
        p.communicate()
    path.write_text(text + 'write-mode = "append"\n')
    p = hub("run", str(path), "--no-progress")
    try:
        _wait(lambda: target.visible("items") >= 200, "the rows after the kill", p)
        time.sleep(1.5)  # a duplicate would show now
        p.send_signal(signal.SIGTERM)
        err = p.communicate(timeout=60)[1]
    finally:
        if p.poll() is None:
            p.kill()
            p.communicate()
    assert p.returncode == 0, err
    assert target.query("SELECT count(*), count(DISTINCT id), min(w), max(w) FROM items") == [
        (200, 200, 3, 3)]
    assert visible_early == 0, "rows became visible before their checkpoint"
