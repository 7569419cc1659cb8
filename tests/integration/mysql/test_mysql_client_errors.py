"""The MySQL source classifies the errors a real MariaDB gives as formats/clients/mysql.py
says (the one table the JDBC sink uses too): a user over its connection limit waits
(transient), TLS the server can't do and a missing privilege stop (terminal, naming the user
or host), a connection the server kills is lost (transient)."""
from __future__ import annotations

import threading
import time
import uuid

import pymysql
import pytest

from runtime.errors import TerminalError, TransientError
from sources.mysql.protocol import connect, translate
from tests.integration.mysql.helpers import Running, new_database, source_config
from tests.servers.common import wait_until

pytestmark = [pytest.mark.integration, pytest.mark.mysql]


def _user(server, grant: str, limit: str = "") -> str:
    name = "ce_" + uuid.uuid4().hex[:8]
    conn = server.connect()
    with conn.cursor() as cur:
        cur.execute(f"CREATE USER '{name}'@'%' IDENTIFIED BY 'pw' {limit}")
        cur.execute(f"GRANT {grant} TO '{name}'@'%'")
    conn.close()
    return name


def settings(server, user: str, **extra) -> dict:
    return {"host": server.host, "port": server.port, "user": user, "password": "pw",
            "connect_timeout": 5, **extra}


def test_a_user_over_its_connection_limit_is_transient(mysql_server):
    """MariaDB 1226 / MySQL 1203: the limit frees up when the user's other connections end
    (the source used to stop the pipeline for it)."""
    user = _user(mysql_server, "ALL PRIVILEGES ON *.*", "WITH MAX_USER_CONNECTIONS 1")
    held = connect(settings(mysql_server, user))
    try:
        with pytest.raises(TransientError) as info:
            connect(settings(mysql_server, user))
        assert f"{mysql_server.host}:{mysql_server.port}" in str(info.value)
    finally:
        held.close()

    def passes() -> bool:
        connect(settings(mysql_server, user)).close()
        return True

    # and it passes once the other is gone (the server frees the slot after the close
    # arrives, not at once: a connect right behind the close can still find it taken)
    wait_until(passes, 10, f"a connection of {user} once the other closed")


def test_tls_the_server_cant_do_is_terminal(mysql_server):
    """Client error 2026: retrying can't make the server speak TLS (the source used to retry
    every client error >= 2000)."""
    probe = mysql_server.connect()
    with probe.cursor() as cur:
        cur.execute("SHOW VARIABLES LIKE 'have_ssl'")
        row = cur.fetchone()
    probe.close()
    if row and row[1] == "YES":
        pytest.skip("this server speaks TLS")
    user = _user(mysql_server, "ALL PRIVILEGES ON *.*")
    with pytest.raises(TerminalError) as info:
        connect(settings(mysql_server, user, ssl={"verify_mode": False}))
    assert not getattr(info.value, "transient", False)
    assert "2026" in str(info.value) and str(mysql_server.port) in str(info.value)


def test_a_missing_privilege_stops_the_pipeline_naming_the_user(mysql_server):
    """A user that may read the tables but not the binlog status (error 1227): terminal, and
    the line says a grant is missing, not that the login was refused."""
    db = new_database(mysql_server)
    user = _user(mysql_server, f"SELECT ON `{db}`.*")
    config = source_config(mysql_server, db, username=user, password="pw")
    run = Running(config, parallelism=1)
    with run:
        run.thread.join(30)
    assert isinstance(run.error, TerminalError), run.error
    message = str(run.error)
    assert f"user {user!r} lacks a privilege" in message and "1227" in message, message
    assert "refused" not in message


def test_a_connection_the_server_kills_is_transient(mysql_server):
    """The server gone from under a running statement (KILL, as a shutdown does it)."""
    user = _user(mysql_server, "ALL PRIVILEGES ON *.*")
    s = settings(mysql_server, user)
    victim = connect(s)
    with victim.cursor() as cur:
        cur.execute("SELECT CONNECTION_ID()")
        cid = cur.fetchone()[0]

    def kill() -> None:
        time.sleep(0.3)
        admin = mysql_server.connect()
        with admin.cursor() as cur:
            cur.execute(f"KILL {cid}")
        admin.close()

    killer = threading.Thread(target=kill)
    killer.start()
    errors = []
    for statement in ("SELECT SLEEP(10)", "SELECT 1"):  # during, then after the kill
        try:
            with victim.cursor() as cur:
                cur.execute(statement)
        except (pymysql.err.MySQLError, OSError) as exc:
            errors.append(translate(exc, s))
    killer.join()
    assert len(errors) == 2
    assert all(isinstance(e, TransientError) for e in errors), errors


def test_connections_share_the_default_tls_context(mysql_server):
    """PyMySQL's default mode (TLS when the server offers it) made a context per connection,
    loading the system's CA certificates each time (~25 ms of CPU); the source makes it once."""
    user = _user(mysql_server, "ALL PRIVILEGES ON *.*")
    a, b = connect(settings(mysql_server, user)), connect(settings(mysql_server, user))
    try:
        assert a.ctx is not None and a.ctx is b.ctx
        with a.cursor() as cur:  # and the connections work
            cur.execute("SELECT 1")
            assert cur.fetchone() == (1,)
    finally:
        a.close()
        b.close()
