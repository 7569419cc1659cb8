"""A quiet database is not a lagging one: the binlog's heartbeats tell the source it has read
everything, and the event-time lag is measured from the last one, not from the last change."""
from __future__ import annotations

import time

import pytest

from tests.integration.mysql.helpers import Running, new_database, source_config

pytestmark = [pytest.mark.integration, pytest.mark.mysql]


def test_the_lag_stays_small_on_a_quiet_database(mysql_server):
    db = new_database(mysql_server)
    conn = mysql_server.connect()
    with conn.cursor() as cur:
        cur.execute(f"CREATE TABLE {db}.t (id INT PRIMARY KEY)")
    config = source_config(mysql_server, db, **{"heartbeat-interval": "0.3s"})
    with Running(config, parallelism=1) as run:
        with conn.cursor() as cur:
            cur.execute(f"INSERT INTO {db}.t VALUES (1)")
        run.wait_for(lambda events: len(events) == 1)
        changed = time.time()
        time.sleep(3.0)  # nothing happens on the database meanwhile
        lag = run.executor.metrics.event_time_lag_s()
        assert lag is not None and lag < 1.5, \
            f"lag {lag:.1f}s, {time.time() - changed:.1f}s after the last change"


def test_snapshot_progress_counts_tables_and_chunks(mysql_server):
    db = new_database(mysql_server)
    conn = mysql_server.connect()
    with conn.cursor() as cur:
        for t in ("a", "b", "c"):
            cur.execute(f"CREATE TABLE {db}.{t} (id INT PRIMARY KEY)")
            cur.execute(f"INSERT INTO {db}.{t} VALUES " + ",".join(f"({i})" for i in range(50)))
    config = source_config(mysql_server, db, **{"startup-mode": "initial-only",
                                                "chunk-size": 20})
    run = Running(config, parallelism=2)
    with run:
        run.thread.join(60)
    gauges = run.executor.metrics.gauge_values()
    assert gauges["snapshot_tables_done"] == 3 and gauges["snapshot_tables_remaining"] == 0
    assert gauges["snapshot_chunks_done"] == gauges["snapshot_chunks_started"] >= 9
