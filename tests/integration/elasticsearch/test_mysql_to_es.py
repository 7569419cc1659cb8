"""MySQL/MariaDB -> Elasticsearch: a snapshot, then inserts, updates (one changing a key) and
deletes from the binlog, killed once in between; the index ends equal to the source table."""
from __future__ import annotations

import json
import signal
import time
import uuid

import pytest

from tests.killing import hub

from tests.integration.mysql.helpers import new_database

SINK = """\
[sink]
type = "elasticsearch"
hosts = ["{url}"]
index = "{prefix}-{{table}}"
compatibility-mode = {compat}
"""

pytestmark = [pytest.mark.integration, pytest.mark.elasticsearch, pytest.mark.mysql]



def source_rows(conn, db) -> dict:
    with conn.cursor() as cur:
        cur.execute(f"SELECT id, name, price, at, doc FROM {db}.items")
        return {str(i): {"id": i, "name": n, "price": None if p is None else str(p),
                         "at": at.isoformat(timespec="microseconds") if at else None,
                         "doc": json.loads(d) if d else None}
                for i, n, p, at, d in cur.fetchall()}


def index_rows(server, index) -> dict:
    es = server.client()
    try:
        if not es.indices.exists(index=index):
            return {}
        es.indices.refresh(index=index)
        return {h["_id"]: h["_source"]
                for h in es.search(index=index, size=10_000)["hits"]["hits"]}
    finally:
        es.close()


def wait_equal(server, index, conn, db, timeout=60.0) -> dict:
    deadline = time.monotonic() + timeout
    want = source_rows(conn, db)
    while time.monotonic() < deadline:
        if index_rows(server, index) == want:
            return want
        time.sleep(0.3)
    assert index_rows(server, index) == want
    return want


def test_mysql_to_elasticsearch_ends_equal_to_the_table(tmp_path, mysql_server,
                                                         elasticsearch_server):
    db = new_database(mysql_server)
    conn = mysql_server.connect()
    with conn.cursor() as cur:
        cur.execute(f"CREATE TABLE {db}.items (id BIGINT PRIMARY KEY, name VARCHAR(40), "
                    "price DECIMAL(10,2), at DATETIME(6), doc JSON)")
        cur.executemany(f"INSERT INTO {db}.items VALUES (%s, %s, %s, %s, %s)",
                        [(i, f"item {i}", f"{i}.25", f"2024-01-01 00:00:{i % 60:02d}.{i:06d}",
                          json.dumps({"n": i, "tags": ["a", "b"]})) for i in range(1, 301)])
    prefix = f"myes-{uuid.uuid4().hex[:8]}"
    compat = elasticsearch_server.compatibility_toml()
    path = tmp_path / "pipeline.toml"
    path.write_text(mysql_server.pipeline_toml("mysql-es", tmp_path / "state", db, 2, chunk_size=50)
                    + SINK.format(url=elasticsearch_server.url, prefix=prefix, compat=compat))
    index = f"{prefix}-items"
    p = hub("run", str(path), "--no-progress")
    try:
        wait_equal(elasticsearch_server, index, conn, db)  # the snapshot
        with conn.cursor() as cur:
            cur.execute(f"UPDATE {db}.items SET name = CONCAT(name, ' v2'), price = NULL "
                        "WHERE id % 3 = 0")
            cur.execute(f"DELETE FROM {db}.items WHERE id % 5 = 0")
            cur.execute(f"UPDATE {db}.items SET id = 1000 WHERE id = 1")  # a key change
        time.sleep(0.5)
        p.send_signal(signal.SIGKILL)  # mid-stream, whatever is in flight
        p.communicate()
        with conn.cursor() as cur:
            cur.execute(f"INSERT INTO {db}.items (id, name, doc) VALUES (2000, 'late', "
                        "'{\"deep\": {\"x\": [1, 2]}}')")
            cur.execute(f"DELETE FROM {db}.items WHERE id = 2")
        p = hub("run", str(path), "--no-progress")
        final = wait_equal(elasticsearch_server, index, conn, db)
        assert "1" not in final and "1000" in final and "5" not in final
        assert final["3"]["name"] == "item 3 v2" and final["3"]["price"] is None
    finally:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
            _, err = p.communicate(timeout=60)
            assert p.returncode == 0, err
        conn.close()
