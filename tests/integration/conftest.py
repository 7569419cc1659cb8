"""Session-wide real servers for the integration suites (started once, shared by tests; each
test uses a database of its own)."""
from __future__ import annotations

import pytest

from tests.servers import kafka, mariadb, postgres


@pytest.fixture(scope="session")
def mysql_server():
    yield mariadb.shared()


@pytest.fixture(scope="session")
def postgres_server():
    yield postgres.shared()


@pytest.fixture(scope="session")
def webhdfs_server():
    """HDFS: docker-compose's namenode with HUB_TEST_WEBHDFS=http://127.0.0.1:9870, else a
    real NameNode and DataNode started for the session (tests/servers/hdfs.py)."""
    from tests.servers import webhdfs

    yield webhdfs.shared()


@pytest.fixture(scope="session")
def kafka_server():
    """Apache Kafka (KRaft, from Maven Central) on free ports, or the broker of
    HUB_TEST_KAFKA."""
    yield kafka.shared()


@pytest.fixture(scope="session")
def elasticsearch_server():
    """A real OpenSearch node on free ports (osmem-server with HUB_STAND_INS=1), or
    the Elasticsearch of HUB_TEST_ELASTICSEARCH."""
    from tests.servers import elasticsearch

    yield elasticsearch.shared()


@pytest.fixture(scope="session")
def hbase_server():
    """The Thrift server of HUB_TEST_HBASE, else a real HBase 2.6 and its Thrift server
    started for the session (tests/servers/hbase.py; HUB_STAND_INS=1: our Thrift test
    server, tests/servers/hbase_thrift.py)."""
    from tests.servers import hbase_thrift

    yield hbase_thrift.shared()


@pytest.fixture(scope="session")
def schema_registry_url():
    """Our Schema Registry test server, or the registry of HUB_TEST_SCHEMA_REGISTRY."""
    from tests.servers import schema_registry

    external = schema_registry.from_env()
    if external:
        yield external
        return
    server = schema_registry.SchemaRegistryTestServer()
    try:
        yield server.start()
    finally:
        server.stop()


@pytest.fixture(scope="session")
def hive_metastore():
    """A real Hive Metastore (tests/servers/hive_metastore.py: a throwaway standalone one on a
    free port, or the one of HUB_TEST_HIVE_METASTORE); skipped without the Thrift bindings."""
    pytest.importorskip("hive_metastore", reason="needs the metastore extra (pyiceberg[hive])")
    from tests.servers import hive_metastore

    yield hive_metastore.shared()
