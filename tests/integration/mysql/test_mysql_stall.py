"""A binlog stream that stops moving while the server's binlog moves on is impossible to miss:
the watchdog logs a line naming both positions (here the stream is made to hang after it
connected, as a wedged connection or reader would)."""
from __future__ import annotations

import logging
import time

import pytest

from sources.mysql import watchdog
from sources.mysql.binlog import BinlogFetcher
from tests.integration.mysql.helpers import Running, new_database, source_config

pytestmark = [pytest.mark.integration, pytest.mark.mysql]


def test_a_stream_that_reads_nothing_while_the_server_moves_on_is_logged(mysql_server,
                                                                        monkeypatch, caplog):
    db = new_database(mysql_server)
    conn = mysql_server.connect()
    with conn.cursor() as cur:
        cur.execute(f"CREATE TABLE {db}.t (id INT PRIMARY KEY)")
    monkeypatch.setattr(watchdog, "MIN_PERIOD_S", 0.5)
    monkeypatch.setattr(BinlogFetcher, "_stream", lambda self, client: self.stopped.wait())
    config = source_config(mysql_server, db, **{"startup-mode": "latest"})
    with caplog.at_level(logging.WARNING, logger="hub.sources.mysql"):
        with Running(config, parallelism=1):
            time.sleep(1.0)
            with conn.cursor() as cur:
                cur.execute(f"INSERT INTO {db}.t VALUES (1)")
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline and not any(
                    "while its binlog moved on" in r.getMessage() for r in caplog.records):
                time.sleep(0.1)
    lines = [r.getMessage() for r in caplog.records if "while its binlog moved on" in r.getMessage()]
    assert lines, "a stalled stream went unnoticed"
    assert "the server's binlog ends at" in lines[0] and "the stream is reading" in lines[0]
