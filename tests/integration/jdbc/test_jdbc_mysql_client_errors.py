"""The JDBC sink's MySQL dialect classifies the errors a real MariaDB gives as
formats/clients/mysql.py says (the one table the MySQL source uses too): a user over its
connection limit waits (transient), a missing privilege stops naming the user (terminal), a
connection the server kills is lost (transient)."""
from __future__ import annotations

import threading
import time
import uuid
from urllib.parse import quote

import pymysql
import pytest

from runtime.batch import ChangeBatch
from runtime.deadletter import DeadLetterQueue
from runtime.errors import TerminalError, TransientError
from runtime.schema import Column, TableSchema
from runtime.sink import WriterContext
from runtime.types import T
from sinks.jdbc.config import JdbcSinkConfig
from sinks.jdbc.sink import JdbcSink
from tests.integration.jdbc.writing import write_and_commit

pytestmark = [pytest.mark.integration, pytest.mark.jdbc]

ITEMS = TableSchema("src.items", (Column("id", T("BIGINT"), False), Column("s", T("STRING"))),
                    ("id",))


def _user(server, grant: str, limit: str = "") -> str:
    name = "ce_" + uuid.uuid4().hex[:8]
    conn = server.connect()
    with conn.cursor() as cur:
        cur.execute(f"CREATE USER '{name}'@'%' IDENTIFIED BY 'pw' {limit}")
        cur.execute(f"GRANT {grant} TO '{name}'@'%'")
    conn.close()
    return name


def sink_as(my, user: str, **options) -> JdbcSink:
    url = f"mysql://{quote(user)}:pw@{my.server.host}:{my.server.port}/{my.name}"
    return JdbcSink(JdbcSinkConfig.model_validate({"url": url, **options}))


def test_a_user_over_its_connection_limit_is_transient(my):
    """MariaDB 1226 / MySQL 1203: the limit frees up when the user's other connections end
    (the sink used to stop the pipeline for it)."""
    user = _user(my.server, f"ALL PRIVILEGES ON `{my.name}`.*", "WITH MAX_USER_CONNECTIONS 1")
    dialect = sink_as(my, user).dialect()
    held = dialect.connect()
    try:
        with pytest.raises(TransientError) as info:
            dialect.connect()
        assert f"{my.server.host}:{my.server.port}" in str(info.value)
    finally:
        held.close()
    dialect.connect().close()  # and it passes once the other is gone


def test_a_missing_privilege_is_terminal_naming_the_user(my):
    """A user that may read but not create tables (error 1142)."""
    user = _user(my.server, f"SELECT ON `{my.name}`.*")
    sink = sink_as(my, user, **{"exactly-once": False})
    context = WriterContext("ce", 0, 1, "a1", "/tmp", DeadLetterQueue())
    with pytest.raises(TerminalError) as info:
        write_and_commit(sink, context, [ChangeBatch.of_rows(ITEMS, [(1, "a")])])
    message = str(info.value)
    assert not getattr(info.value, "transient", False)
    assert f"user {user!r} lacks a privilege" in message and "1142" in message, message
    assert "\n" not in message


def test_a_connection_the_server_kills_is_transient(my):
    """The server gone from under a running statement (KILL, as a shutdown does it)."""
    dialect = JdbcSink(JdbcSinkConfig.model_validate({"url": my.url})).dialect()
    victim = dialect.connect()
    with victim.cursor() as cur:
        cur.execute("SELECT CONNECTION_ID()")
        cid = cur.fetchone()[0]

    def kill() -> None:
        time.sleep(0.3)
        admin = my.server.connect()
        with admin.cursor() as cur:
            cur.execute(f"KILL {cid}")
        admin.close()

    killer = threading.Thread(target=kill)
    killer.start()
    errors = []
    for statement in ("SELECT SLEEP(10)", "SELECT 1"):  # during, then after the kill
        try:
            dialect.execute_ddl(victim, statement)
        except dialect.driver_errors as exc:
            assert isinstance(exc, (pymysql.err.MySQLError, OSError))
            errors.append(dialect.translate(exc, "writing"))
    killer.join()
    assert len(errors) == 2
    assert all(isinstance(e, TransientError) for e in errors), errors
