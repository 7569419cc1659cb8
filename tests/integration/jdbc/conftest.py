"""Fixtures of the JDBC sink integration tests: a fresh database per test, on PostgreSQL and
on MariaDB/MySQL (``db``), or on one of them (``pg``, ``my``)."""
from __future__ import annotations

import pytest

from tests.integration.jdbc.databases import Database, create_database


@pytest.fixture(params=["postgres", "mariadb"])
def db(request) -> Database:
    server = request.getfixturevalue("postgres_server" if request.param == "postgres"
                                     else "mysql_server")
    return create_database(request.param, server, request.node.nodeid)


@pytest.fixture
def pg(postgres_server, request) -> Database:
    return create_database("postgres", postgres_server, request.node.nodeid)


@pytest.fixture
def my(mysql_server, request) -> Database:
    return create_database("mariadb", mysql_server, request.node.nodeid)
