"""Closing the binlog connections never swallows an error without a line saying what was
dropped and why (a close that fails loses nothing: the position is the hub's)."""
from __future__ import annotations

import logging

import pytest

from sources.mysql.dialect import detect
from sources.mysql.protocol import BinlogClient

pytestmark = [pytest.mark.integration, pytest.mark.mysql]


def test_a_failing_close_of_the_dump_connection_is_logged(mysql_server, caplog):
    conn = mysql_server.connect()
    dialect = detect(conn)
    end = dialect.binlog_status(conn)
    conn.close()
    client = BinlogClient({"host": mysql_server.host, "port": mysql_server.port,
                           "user": mysql_server.user, "password": mysql_server.password},
                          dialect, 7090, 1.0, 10.0)
    client.open(end)
    client.conn.close()             # closed under it: PyMySQL's close raises "Already closed"
    with caplog.at_level(logging.DEBUG, logger="hub.sources.mysql"):
        client.close()
    assert client.conn is None
    lines = [r.getMessage() for r in caplog.records if r.name == "hub.sources.mysql"]
    assert any("closing the dump connection" in m and "dropped" in m for m in lines), lines
