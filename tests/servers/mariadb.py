"""A throwaway MariaDB server (row binlog, GTID), or the one named by ``HUB_TEST_MYSQL``.

``HUB_TEST_MYSQL=mysql://root:hub@127.0.0.1:3306`` points the tests at a running server
(e.g. docker-compose's MySQL 8); otherwise ``mariadbd`` from the Debian package is started on a
free port with its own data folder and removed afterwards.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import tempfile
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlparse

from tests.servers.common import (find_binary, free_port, shared_server, skip_unless_installed,
                                  stop_server, wait_until)


@dataclass(frozen=True)
class MySqlServer:
    host: str
    port: int
    user: str
    password: str
    flavor: str  # "mariadb" or "mysql"

    def connect(self, database: str | None = None, **kw):
        import pymysql

        return pymysql.connect(host=self.host, port=self.port, user=self.user,
                               password=self.password, database=database, autocommit=True, **kw)

    @property
    def url(self) -> str:
        return f"mysql://{self.user}@{self.host}:{self.port}"

    def source_toml(self) -> str:
        """The connection lines of a ``[source] type = "mysql"`` section for this server."""
        return (f'type = "mysql"\nhostname = "{self.host}"\nport = {self.port}\n'
                f'username = "{self.user}"\npassword = "{self.password}"')

    def pipeline_toml(self, name: str, state: Any, db: str, parallelism: int = 1,
                      **source: Any) -> str:
        """A pipeline file up to its ``[sink]``: checkpoints every 200 ms into ``state``, the
        tables of database ``db`` on this server with heartbeats every 200 ms, and more
        ``source`` options (``chunk_size=50`` -> ``chunk-size = 50``)."""
        options = {"tables": [f"{db}\\..*"], "heartbeat-interval": "200ms",
                   **{k.replace("_", "-"): v for k, v in source.items()}}
        lines = "".join(f"{k} = {json.dumps(v)}\n" for k, v in options.items())
        return (f'[pipeline]\nname = "{name}"\nparallelism = {parallelism}\n'
                f'[checkpoint]\ninterval = "200ms"\ndir = "{state}"\n'
                f"[source]\n{self.source_toml()}\n{lines}")


class ThrowawayMariaDB:
    """A ``mariadbd`` of its own.  ``shutdown`` stops it cleanly (as an operator's restart
    does: replication clients get the server's end-of-stream packet) and ``restart`` starts it
    again on the same port and data folder, for tests of a source restart."""

    def __init__(self, server_id: int = 1, extra_args: tuple[str, ...] = ()) -> None:
        self.server_id, self.extra_args = server_id, tuple(extra_args)
        self.dir = tempfile.mkdtemp(prefix="hub-mariadb-")
        self.port = free_port()
        self.proc: subprocess.Popen | None = None
        self.data = os.path.join(self.dir, "data")
        self.log = os.path.join(self.dir, "error.log")

    def start(self) -> MySqlServer:
        install = find_binary("mariadb-install-db", "mysql_install_db")
        # the bootstrap's temporary tables in our own folder too: bootstraps running at once
        # (pytest-xdist workers) collide on their names in /tmp and fail
        tmpdir = os.path.join(self.dir, "tmp")
        os.makedirs(tmpdir, exist_ok=True)
        done = subprocess.run([install, f"--datadir={self.data}", "--user=root",
                               "--auth-root-authentication-method=normal", "--skip-test-db",
                               "--no-defaults", f"--tmpdir={tmpdir}"],
                              capture_output=True, text=True)
        if done.returncode:
            raise RuntimeError(f"{install} failed ({done.returncode}): "
                               f"{(done.stdout + done.stderr)[-2000:]}")
        self._launch()
        import pymysql

        conn = pymysql.connect(unix_socket=f"{self.dir}/mysql.sock", user="root", autocommit=True)
        with conn.cursor() as cur:
            cur.execute("CREATE USER IF NOT EXISTS 'root'@'127.0.0.1'")
            cur.execute("ALTER USER 'root'@'127.0.0.1' IDENTIFIED BY 'hub'")
            cur.execute("GRANT ALL PRIVILEGES ON *.* TO 'root'@'127.0.0.1' WITH GRANT OPTION")
            cur.execute("ALTER USER 'root'@'localhost' IDENTIFIED BY 'hub'")
        conn.close()
        return MySqlServer("127.0.0.1", self.port, "root", "hub", "mariadb")

    def _launch(self) -> None:
        mariadbd = find_binary("mariadbd", "/usr/sbin/mariadbd")
        # temporary tables in a folder of its own: whatever cleans the machine's /tmp must
        # not delete a running server's files
        tmpdir = os.path.join(self.dir, "tmp")
        os.makedirs(tmpdir, exist_ok=True)
        self.proc = subprocess.Popen([
            mariadbd, "--no-defaults", f"--datadir={self.data}", "--user=root",
            f"--tmpdir={tmpdir}",
            f"--port={self.port}", "--bind-address=127.0.0.1",
            f"--socket={self.dir}/mysql.sock", f"--pid-file={self.dir}/mysql.pid",
            f"--log-error={self.log}", f"--server-id={self.server_id}", "--log-bin=mysql-bin", "--binlog-format=ROW",
            "--binlog-row-image=FULL", "--binlog-row-metadata=FULL", "--gtid-strict-mode=ON", "--innodb-buffer-pool-size=128M",
            "--innodb-flush-log-at-trx-commit=2", "--sync-binlog=0", "--skip-name-resolve",
            "--max-connections=200", "--character-set-server=utf8mb4",
            "--collation-server=utf8mb4_general_ci", "--default-time-zone=+00:00",
            *self.extra_args,
        ], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        import pymysql

        def ready() -> bool:
            pymysql.connect(unix_socket=f"{self.dir}/mysql.sock", user="root").close()
            return True

        def ready_any() -> bool:
            try:
                return ready()
            except pymysql.err.OperationalError as exc:
                if exc.args[0] == 1045:   # up, with the password set by start()
                    return True
                raise

        wait_until(ready_any, 60, "mariadbd", self.proc, self.log)

    def shutdown(self, how: str = "sql") -> None:
        """Stop the server cleanly: ``"sql"`` sends SHUTDOWN, ``"sigterm"`` a SIGTERM; waits
        until the process is gone.  The data folder stays for :meth:`restart`."""
        assert self.proc is not None
        if how == "sql":
            import pymysql

            conn = pymysql.connect(unix_socket=f"{self.dir}/mysql.sock", user="root",
                                   password="hub")
            with conn.cursor() as cur:
                cur.execute("SHUTDOWN")
            conn.close()
        else:
            self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(60)
        self.proc = None

    def restart(self) -> None:
        """Start the server again on the same port and data folder."""
        assert self.proc is None, "shutdown() first"
        self._launch()

    def stop(self) -> None:
        stop_server(self.proc, self.dir)


def from_env() -> MySqlServer | None:
    url = os.environ.get("HUB_TEST_MYSQL")
    if not url:
        return None
    u = urlparse(url)
    return MySqlServer(u.hostname or "127.0.0.1", u.port or 3306, u.username or "root",
                       u.password or "", os.environ.get("HUB_TEST_MYSQL_FLAVOR", "mysql"))


def shared() -> MySqlServer:
    """The one server of this test process (see :func:`tests.servers.common.shared_server`)."""
    return shared_server("mariadb", from_env, ThrowawayMariaDB)


def skip_unless_installed_here() -> None:
    """Skip a test that needs a MariaDB of its own where the Debian package is missing."""
    skip_unless_installed("a MariaDB of its own", "mariadbd", "/usr/sbin/mariadbd")
