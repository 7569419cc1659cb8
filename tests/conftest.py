"""Settings of the whole test session."""
from __future__ import annotations

import signal


def _exit_on_sigterm(signum: int, _frame: object) -> None:
    # SIGTERM (a CI timeout, `timeout`, a tired developer) ends the session like Ctrl-C does:
    # fixtures finish and atexit handlers stop the throwaway servers (JVMs of Kafka, HDFS, the
    # Hive Metastore, MariaDB, PostgreSQL) instead of leaving them running without a parent.
    raise SystemExit(128 + signum)


def pytest_configure(config: object) -> None:
    signal.signal(signal.SIGTERM, _exit_on_sigterm)


def pytest_sessionfinish(session: object, exitstatus: int) -> None:
    # the throwaway servers of this process (each pytest-xdist worker has its own, and leaves
    # without running atexit handlers)
    from tests.servers.common import stop_all

    stop_all()
