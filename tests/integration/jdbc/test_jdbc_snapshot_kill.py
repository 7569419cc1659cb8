"""Exactly once of the snapshot COPY path, proven with kill -9: ``hub run`` of a MariaDB
table's snapshot into PostgreSQL, killed at random moments and between a durable checkpoint
and its commit, ends with the source's rows, each inserted exactly once (a row trigger on the
target logs every insert and update: a chunk written twice would show as a second insert or,
through the upsert fallback, as an update), and no prepared transaction left behind."""
from __future__ import annotations

import pytest

from tests.integration.jdbc.databases import LOGGED_ORDERS as TARGET, create_database
from tests.integration.mysql.helpers import orders_table
from tests.killing import (assert_resumed_after, crash_at, kill_at_random, latest_checkpoint,
                           run_to_end)

pytestmark = [pytest.mark.integration, pytest.mark.jdbc]

ROWS = 100_000  # enough that a run lasts beyond its first checkpoints
PIPELINE = """
[pipeline]
name = "copy-kill"
parallelism = 2
[checkpoint]
interval = "150ms"
dir = "{dir}/state"
[source]
{connection}
tables = ["{db}\\\\.orders"]
chunk-size = 500
fetch-size = 500
startup-mode = "initial-only"
[sink]
type = "jdbc"
url = "{url}"
batch-size = 500
"""


@pytest.fixture(scope="module")
def source(mysql_server):
    db = orders_table(mysql_server, ROWS)
    conn = mysql_server.connect()
    with conn.cursor() as cur:
        cur.execute(f"SELECT id, name, amount FROM {db}.orders")
        rows = set(cur.fetchall())
    conn.close()
    return db, rows


def setup(tmp_path, mysql_server, postgres_server, source, name):
    db, _ = source
    pg = create_database("postgres", postgres_server, name)
    conn = pg.connect()
    with conn:
        conn.execute(TARGET)
    path = tmp_path / "pipeline.toml"
    path.write_text(PIPELINE.format(dir=tmp_path, connection=mysql_server.source_toml(), db=db,
                                    url=pg.url))
    return pg, str(path)


def check_exactly_once(pg, source) -> None:
    assert pg.rows("orders") == source[1]
    writes = pg.query("SELECT op, count(*), count(DISTINCT id) FROM writes GROUP BY op")
    assert writes == [("INSERT", ROWS, ROWS)], writes
    assert pg.prepared("hub:copy-kill:") == []


def test_snapshot_copy_killed_at_random_moments(mysql_server, postgres_server, source,
                                                tmp_path, request):
    pg, pipeline = setup(tmp_path, mysql_server, postgres_server, source, request.node.nodeid)
    kill_at_random(pipeline, str(tmp_path / "state"), times=4, between=(0.0, 0.4))
    err = run_to_end(pipeline)
    assert "resuming from checkpoint" in err
    check_exactly_once(pg, source)


def test_snapshot_copy_crash_between_prepare_and_commit(mysql_server, postgres_server, source,
                                                        tmp_path, request):
    pg, pipeline = setup(tmp_path, mysql_server, postgres_server, source, request.node.nodeid)
    # the first checkpoint from 3 on with rows in it (the snapshot may not flow yet at 3)
    crashed = crash_at(pipeline, "checkpoint-stored", "3+")
    n = latest_checkpoint(str(tmp_path / "state"))
    prepared = pg.prepared("hub:copy-kill:")
    assert any(x.endswith(f":{n}") for x in prepared), (n, prepared, crashed)
    err = run_to_end(pipeline)
    assert_resumed_after(err, "checkpoint-stored", n)
    check_exactly_once(pg, source)
