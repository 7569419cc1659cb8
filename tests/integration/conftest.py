"""Session-wide real servers for the integration suites (started once, shared by tests; each
test uses a database of its own)."""
from __future__ import annotations

import pytest

from tests.servers import mariadb, postgres


@pytest.fixture(scope="session")
def mysql_server():
    external = mariadb.from_env()
    if external is not None:
        yield external
        return
    server = mariadb.ThrowawayMariaDB()
    try:
        yield server.start()
    finally:
        server.stop()


@pytest.fixture(scope="session")
def postgres_server():
    external = postgres.from_env()
    if external is not None:
        yield external
        return
    server = postgres.ThrowawayPostgres()
    try:
        yield server.start()
    finally:
        server.stop()
