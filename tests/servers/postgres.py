"""A throwaway PostgreSQL server (``max_prepared_transactions`` on), or the one named by
``HUB_TEST_POSTGRES`` (e.g. ``postgresql://postgres:hub@127.0.0.1:5432/postgres``).

PostgreSQL refuses to run as root, so when the tests run as root the server runs as the
``postgres`` user the Debian package creates.
"""
from __future__ import annotations

import os
import pwd
import subprocess
import tempfile
from dataclasses import dataclass
from urllib.parse import urlparse

from tests.servers.common import (find_binary, free_port, shared_server, skip_unless_installed,
                                  stop_server, wait_until)


@dataclass(frozen=True)
class PostgresServer:
    host: str
    port: int
    user: str
    password: str
    database: str

    def connect(self, dbname: str | None = None, **kw):
        import psycopg

        return psycopg.connect(host=self.host, port=self.port, user=self.user,
                               password=self.password or None, dbname=dbname or self.database,
                               autocommit=True, **kw)

    @property
    def url(self) -> str:
        return f"postgresql://{self.user}@{self.host}:{self.port}/{self.database}"


class ThrowawayPostgres:
    """``max_prepared_transactions`` is 64 unless given (0 makes a server without 2PC)."""

    def __init__(self, max_prepared_transactions: int = 64) -> None:
        self.max_prepared = max_prepared_transactions
        self.dir = tempfile.mkdtemp(prefix="hub-postgres-")
        os.chmod(self.dir, 0o755)
        self.port = free_port()
        self.proc: subprocess.Popen | None = None

    def _as_owner(self) -> list[str]:
        if os.geteuid() != 0:
            return []
        return ["runuser", "-u", "postgres", "--"]

    def start(self) -> PostgresServer:
        """Create the data folder and start the server on :attr:`port`."""
        initdb = find_binary("/usr/lib/postgresql/*/bin/initdb", "initdb")
        self.bin = os.path.dirname(initdb)
        self.data = os.path.join(self.dir, "data")
        if os.geteuid() == 0:
            pw = pwd.getpwnam("postgres")
            os.chown(self.dir, pw.pw_uid, pw.pw_gid)
        subprocess.run(self._as_owner() + [initdb, "-D", self.data, "-U", "postgres",
                                           "--auth=trust", "--no-sync", "-E", "UTF8"],
                       check=True, capture_output=True)
        return self.restart()

    def shutdown(self) -> None:
        """Stop the server as an operator does (``pg_ctl stop -m fast``: sessions are ended
        with ``AdminShutdown``), keeping its data folder and port for :meth:`restart`."""
        subprocess.run(self._as_owner() + [os.path.join(self.bin, "pg_ctl"), "stop", "-D",
                                           self.data, "-m", "fast", "-w", "-t", "60"],
                       check=True, capture_output=True)
        if self.proc is not None:
            self.proc.wait(30)

    def restart(self) -> PostgresServer:
        """Start the server (again) on the same port and data folder; returns once it accepts
        connections."""
        postgres = os.path.join(self.bin, "postgres")
        data = self.data
        log = os.path.join(self.dir, "server.log")
        with open(log, "ab") as out:
            self.proc = subprocess.Popen(self._as_owner() + [
                postgres, "-D", data, "-p", str(self.port), "-k", self.dir,
                "-c", "listen_addresses=127.0.0.1", "-c", f"max_prepared_transactions={self.max_prepared}",
                "-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off",
                "-c", "max_connections=200", "-c", "TimeZone=UTC",
            ], stdout=out, stderr=subprocess.STDOUT)
        server = PostgresServer("127.0.0.1", self.port, "postgres", "", "postgres")

        def ready() -> bool:
            server.connect().close()
            return True

        wait_until(ready, 60, "postgres", self.proc, log)
        return server

    def stop(self) -> None:
        stop_server(self.proc, self.dir)


def from_env() -> PostgresServer | None:
    url = os.environ.get("HUB_TEST_POSTGRES")
    if not url:
        return None
    u = urlparse(url)
    return PostgresServer(u.hostname or "127.0.0.1", u.port or 5432, u.username or "postgres",
                          u.password or "", (u.path or "/postgres").lstrip("/") or "postgres")


def shared() -> PostgresServer:
    """The one server of this test process (see :func:`tests.servers.common.shared_server`)."""
    return shared_server("postgres", from_env, ThrowawayPostgres)


def skip_unless_installed_here() -> None:
    """Skip a test that needs a PostgreSQL of its own where the Debian package is missing."""
    skip_unless_installed("a PostgreSQL of its own", "/usr/lib/postgresql/*/bin/initdb", "initdb")
