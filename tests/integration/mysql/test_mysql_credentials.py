"""Wrong credentials are terminal, at once, with one line naming user, host and port, on the
pipeline's first connection, on a snapshot connection and on the binlog connection; a server
that is not there stays transient (the runtime's [restart] waits it out)."""
from __future__ import annotations

import time
import uuid

import pytest

from runtime.errors import TerminalError, TransientError
from sources.mysql.dialect import detect
from sources.mysql.offset import BinlogOffset
from sources.mysql.protocol import BinlogClient, connect
from sources.mysql.reader import _ChunkFetcher
from tests.integration.mysql.helpers import Running, new_database, source_config
from tests.servers.common import free_port

pytestmark = [pytest.mark.integration, pytest.mark.mysql]


@pytest.fixture(scope="module")
def user(mysql_server):
    """A user with a password, and every right the source needs."""
    name = "u_" + uuid.uuid4().hex[:8]
    conn = mysql_server.connect()
    with conn.cursor() as cur:
        cur.execute(f"CREATE USER '{name}'@'%' IDENTIFIED BY 'right'")
        cur.execute(f"GRANT ALL PRIVILEGES ON *.* TO '{name}'@'%'")
    conn.close()
    return name


def settings(server, user, password="wrong", port=None) -> dict:
    return {"host": server.host, "port": port or server.port, "user": user,
            "password": password, "connect_timeout": 5}


def test_wrong_password_is_terminal_on_every_connection(mysql_server, user):
    s = settings(mysql_server, user)
    at = f"{mysql_server.host}:{mysql_server.port}"
    with pytest.raises(TerminalError) as info:
        connect(s)
    assert user in str(info.value) and at in str(info.value) and "1045" in str(info.value)
    # the binlog connection
    probe = mysql_server.connect()
    dialect = detect(probe)
    end = dialect.binlog_status(probe)
    probe.close()
    client = BinlogClient(s, dialect, 7077, 1.0, 10.0)
    with pytest.raises(TerminalError) as info:
        client.open(BinlogOffset(end.file, end.pos))
    assert user in str(info.value) and at in str(info.value)
    # a snapshot connection
    config = source_config(mysql_server, "x", username=user, password="wrong")
    with pytest.raises(TerminalError):
        _ChunkFetcher(config, 7078)._connect()
    # the right password works (the user exists and may read)
    connect(settings(mysql_server, user, "right")).close()


def test_wrong_password_stops_the_pipeline_at_once(mysql_server, user):
    db = new_database(mysql_server)
    config = source_config(mysql_server, db, username=user, password="wrong")
    started = time.monotonic()
    run = Running(config, parallelism=1)
    with run:
        run.thread.join(30)
    assert run.error is not None and isinstance(run.error, TerminalError), run.error
    assert not getattr(run.error, "transient", False)
    assert user in str(run.error) and str(mysql_server.port) in str(run.error)
    assert time.monotonic() - started < 30


def test_unreachable_server_stays_transient(mysql_server, user):
    with pytest.raises(TransientError) as info:
        connect(settings(mysql_server, user, "right", port=free_port()))
    assert "can't connect" in str(info.value)
