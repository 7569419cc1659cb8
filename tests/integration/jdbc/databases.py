"""Fresh databases on real PostgreSQL and MariaDB/MySQL servers for the JDBC sink tests.

The servers are the session fixtures ``postgres_server`` and ``mysql_server`` (throwaway, or
the docker-compose services named by ``HUB_TEST_POSTGRES`` / ``HUB_TEST_MYSQL``).  The sink
conformance cases, which run outside the integration fixtures, start the same kind of server
once per process through :func:`shared_server`.
"""
from __future__ import annotations

import hashlib
import threading
from collections.abc import Sequence
from typing import Any
from urllib.parse import quote

from tests.servers import mariadb, postgres
from tests.servers.common import stop_at_end

FLAVORS = ("postgres", "mariadb")
_servers: dict[str, Any] = {}
_lock = threading.Lock()


def shared_server(flavor: str) -> Any:
    """The server of ``flavor`` for this process: the env var's, or a throwaway one."""
    with _lock:
        if flavor not in _servers:
            module = postgres if flavor == "postgres" else mariadb
            server = module.from_env()
            if server is None:
                throwaway = (postgres.ThrowawayPostgres() if flavor == "postgres"
                             else mariadb.ThrowawayMariaDB())
                server = throwaway.start()
                stop_at_end(throwaway.stop)
            _servers[flavor] = server
        return _servers[flavor]


class Database:
    """One database of a test; ``url`` is what a pipeline's ``[sink] url`` gets."""

    def __init__(self, flavor: str, server: Any, name: str):
        self.flavor, self.server, self.name = flavor, server, name
        auth = quote(server.user) + (":" + quote(server.password) if server.password else "")
        scheme = "postgresql" if flavor == "postgres" else "mysql"
        self.url = f"{scheme}://{auth}@{server.host}:{server.port}/{name}"

    def connect(self) -> Any:
        return self.server.connect(self.name)

    def query(self, statement: str, args: Sequence[Any] | None = None) -> list[tuple]:
        conn = self.connect()
        try:
            if self.flavor == "postgres":
                return [tuple(r) for r in conn.execute(statement, args).fetchall()]
            with conn.cursor() as cur:
                cur.execute(statement, args)
                return [tuple(r) for r in cur.fetchall()]
        finally:
            conn.close()

    def execute(self, statement: str) -> None:
        conn = self.connect()
        try:
            if self.flavor == "postgres":
                conn.execute(statement)
            else:
                with conn.cursor() as cur:
                    cur.execute(statement)
        finally:
            conn.close()

    def q(self, name: str) -> str:
        if self.flavor == "postgres":
            return '"' + name.replace('"', '""') + '"'
        return "`" + name.replace("`", "``") + "`"

    def rows(self, table: str, columns: str = "*") -> set[tuple]:
        return set(self.query(f"SELECT {columns} FROM {self.q(table)}"))

    def snapshot(self, table: str) -> list[tuple[str, ...]]:
        """Every row of ``table`` as comparable text, sorted (JSON values are dicts)."""
        return sorted(tuple(repr(v) for v in r)
                      for r in self.query(f"SELECT * FROM {self.q(table)}"))

    def count(self, table: str) -> int:
        return self.query(f"SELECT count(*) FROM {self.q(table)}")[0][0]

    def exists(self, table: str) -> bool:
        if self.flavor == "postgres":
            return bool(self.query("SELECT to_regclass(%s)", (f'"{table}"',))[0][0])
        return bool(self.query("SELECT 1 FROM information_schema.TABLES WHERE TABLE_SCHEMA = "
                               "DATABASE() AND TABLE_NAME = %s", (table,)))

    def visible(self, table: str) -> int:
        """Rows visible in ``table``; 0 when it does not exist (PostgreSQL creates tables
        inside the two-phase transaction)."""
        return self.count(table) if self.exists(table) else 0

    def prepared(self, prefix: str = "hub:") -> list[str]:
        if self.flavor == "postgres":
            return [r[0] for r in self.query(
                "SELECT gid FROM pg_prepared_xacts WHERE database = current_database()")
                if r[0].startswith(prefix)]
        return [r[3].decode() if isinstance(r[3], bytes) else r[3]
                for r in self.query("XA RECOVER") if (r[3].decode() if isinstance(r[3], bytes)
                                                      else r[3]).startswith(prefix)]


#: PostgreSQL: an ``orders`` target whose every insert and update a trigger logs in
#: ``writes`` (id, op), so a test sees a row written twice
LOGGED_ORDERS = """
CREATE TABLE orders (id bigint PRIMARY KEY, name varchar(40), amount numeric(12,2));
CREATE TABLE writes (id bigint, op text);
CREATE FUNCTION log_write() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO writes VALUES (NEW.id, TG_OP);
  RETURN NULL;
END $$;
CREATE TRIGGER log_write AFTER INSERT OR UPDATE ON orders FOR EACH ROW
  EXECUTE FUNCTION log_write();
"""

def create_database(flavor: str, server: Any, label: str, fresh: bool = True) -> Database:
    """The database named after ``label`` (a test id or a folder): new and empty, or with
    ``fresh=False`` the existing one if there is one."""
    name = "t_" + hashlib.sha1(label.encode()).hexdigest()[:16]
    admin = server.connect()
    try:
        if flavor == "postgres":
            exists = admin.execute("SELECT 1 FROM pg_database WHERE datname = %s",
                                   (name,)).fetchone()
            if exists and fresh:
                admin.execute(f'DROP DATABASE "{name}"')
            if not exists or fresh:
                admin.execute(f'CREATE DATABASE "{name}"')
        else:
            with admin.cursor() as cur:
                if fresh:
                    cur.execute(f"DROP DATABASE IF EXISTS `{name}`")
                cur.execute(f"CREATE DATABASE IF NOT EXISTS `{name}`")
    finally:
        admin.close()
    return Database(flavor, server, name)
