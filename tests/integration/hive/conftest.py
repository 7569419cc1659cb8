"""Fixtures of the Hive Metastore suite: the session's metastore (a throwaway standalone
Hive Metastore, or the one of ``HUB_TEST_HIVE_METASTORE``), and a database name of each
test's own."""
from __future__ import annotations

import uuid

import pytest


@pytest.fixture(scope="session")
def hive_metastore():
    """:class:`tests.servers.hive_metastore.HiveMetastoreServer` of this test process."""
    pytest.importorskip("hive_metastore", reason="needs the metastore extra (pyiceberg[hive])")
    from tests.servers import hive_metastore as hms

    yield hms.shared()


@pytest.fixture
def hive_db() -> str:
    """A metastore database name of this test's own (not created yet)."""
    return f"it_{uuid.uuid4().hex[:10]}"


@pytest.fixture
def root(tmp_path):
    """The files sink's root folder of this test."""
    return tmp_path / "lake"
