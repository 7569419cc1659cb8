"""A throwaway Apache Hive Metastore (the standalone Thrift server, embedded Derby), or the
one named by ``HUB_TEST_HIVE_METASTORE``.

``HUB_TEST_HIVE_METASTORE=thrift://127.0.0.1:9083`` points the tests at a running metastore
(docker-compose's ``hive-metastore``); otherwise Hive's
``org.apache.hadoop.hive.metastore.HiveMetaStore`` is started with Java 17 on a free port,
with its own folder (Derby database, warehouse, configuration) removed afterwards: Hive 3.1.3
by default (pyiceberg's HiveCatalog calls ``get_table``, which Hive 4 dropped), Hive 4.0.1 on
request.  Its jars come from Maven Central through the poms in
``tests/servers/maven/hive-metastore-{3,4}`` and
:mod:`tests.servers.maven` (copied once into a cache folder that survives between runs), so
only the first run downloads and later starts take a few seconds.  The Derby schema is created
by the metastore itself at its first start (``datanucleus.schema.autoCreateAll``, schema
verification off); Hive 3's transaction tables, which autoCreateAll leaves out and table
locks need, by ``TxnDbUtil`` as in Hive's own tests (``HubMetastore.java``).
"""
from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlparse

from tests.servers import maven
from tests.servers.common import free_port, shared_server, stop_server, wait_until

MAIN = "org.apache.hadoop.hive.metastore.HiveMetaStore"


@dataclass(frozen=True)
class HiveMetastoreServer:
    host: str
    port: int

    @property
    def uri(self) -> str:
        return f"thrift://{self.host}:{self.port}"

    @contextlib.contextmanager
    def client(self) -> Iterator[Any]:
        """A raw Thrift client of the metastore (the bindings pyiceberg ships as
        ``hive_metastore``), for tests that look at what a sink registered."""
        from hive_metastore.ThriftHiveMetastore import Client
        from thrift.protocol import TBinaryProtocol
        from thrift.transport import TSocket, TTransport

        transport = TTransport.TBufferedTransport(TSocket.TSocket(self.host, self.port))
        transport.open()
        try:
            yield Client(TBinaryProtocol.TBinaryProtocol(transport))
        finally:
            transport.close()

    def table(self, db: str, table: str) -> Any:
        """The metastore's ``Table`` object of ``db.table``."""
        from hive_metastore.ttypes import GetTableRequest

        with self.client() as c:
            return c.get_table_req(GetTableRequest(dbName=db, tblName=table)).table

    def partition_names(self, db: str, table: str) -> list[str]:
        """``["dt=2024-01-01/hr=03", ...]``, sorted."""
        with self.client() as c:
            return sorted(c.get_partition_names(db, table, -1))

    def partitions(self, db: str, table: str) -> list[Any]:
        """The metastore's ``Partition`` objects of ``db.table`` (values, location ...)."""
        with self.client() as c:
            return c.get_partitions(db, table, -1)


_SITE = """<?xml version="1.0"?>
<configuration>
{props}
</configuration>
"""

_LOG4J = """status = WARN
appender.file.type = File
appender.file.name = file
appender.file.fileName = {log}
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = %d{{ISO8601}} %5p [%t] %c{{2}}: %m%n
rootLogger.level = WARN
rootLogger.appenderRef.file.ref = file
"""


class ThrowawayHiveMetastore:
    """A metastore process of its own on a free port; ``stop`` ends it and removes its
    folder.  ``version`` 3 (Hive 3.1.3, the default: what pyiceberg's HiveCatalog speaks) or
    4 (Hive 4.0.1)."""

    def __init__(self, version: int = 3) -> None:
        if version not in (3, 4):
            raise ValueError(f"Hive Metastore version 3 or 4, not {version}")
        self.version = version
        self.dir = tempfile.mkdtemp(prefix="hub-hms-")
        self.port = free_port()
        self.proc: subprocess.Popen | None = None
        self.log = os.path.join(self.dir, "metastore.log")

    def start(self) -> HiveMetastoreServer:
        java = maven.java(17)
        name = f"hive-metastore-{self.version}"
        jars = os.path.join(maven.jars(name), "*")
        conf = os.path.join(self.dir, "conf")
        os.makedirs(conf)
        props = {
            "javax.jdo.option.ConnectionURL":
                f"jdbc:derby:;databaseName={self.dir}/metastore_db;create=true",
            "javax.jdo.option.ConnectionDriverName": "org.apache.derby.jdbc.EmbeddedDriver",
            "datanucleus.schema.autoCreateAll": "true",
            "metastore.schema.verification": "false",
            "metastore.warehouse.dir": f"file://{self.dir}/warehouse",
            "metastore.warehouse.external.dir": f"file://{self.dir}/warehouse",
            "metastore.thrift.port": str(self.port),
            "metastore.thrift.bind.host": "127.0.0.1",
            "metastore.event.db.notification.api.auth": "false",
        }
        if self.version == 3:
            # Hive 3's default tasks include classes of hive-exec; one that is here will do
            props["metastore.task.threads.always"] = \
                "org.apache.hadoop.hive.metastore.events.EventCleanerTask"
            # partition filters without hive-exec
            props["metastore.expression.proxy"] = \
                "org.apache.hadoop.hive.metastore.DefaultPartitionExpressionProxy"
            # HubMetastore.java: the transaction tables first, then the metastore
            main = os.path.join(maven.HERE, "maven", name, "HubMetastore.java")
        else:
            # no housekeeping threads: a test server needs none, and they cost startup time
            props["metastore.task.threads.always"] = ""
            main = MAIN
        with open(os.path.join(conf, "metastore-site.xml"), "w") as f:
            f.write(_SITE.format(props="\n".join(
                f"<property><name>{k}</name><value>{v}</value></property>"
                for k, v in props.items())))
        with open(os.path.join(conf, "log4j2.properties"), "w") as f:
            f.write(_LOG4J.format(log=self.log))
        with open(self.log + ".out", "w") as out:
            self.proc = subprocess.Popen(
                [java, "-Xmx384m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1",
                 f"-Dlog4j.configurationFile={conf}/log4j2.properties",
                 f"-Dderby.stream.error.file={self.dir}/derby.log",
                 "-cp", conf + os.pathsep + jars, main, "-p", str(self.port)],
                cwd=self.dir, stdout=out, stderr=subprocess.STDOUT)
        server = HiveMetastoreServer("127.0.0.1", self.port)

        def ready() -> bool:
            # the port first: thrift logs every refused connection at ERROR
            socket.create_connection((server.host, server.port), 1).close()
            with server.client() as c:
                return "default" in c.get_all_databases()

        wait_until(ready, 120, "the Hive Metastore", self.proc, self.log)
        return server

    def stop(self) -> None:
        stop_server(self.proc, self.dir)


def from_env() -> HiveMetastoreServer | None:
    url = os.environ.get("HUB_TEST_HIVE_METASTORE")
    if not url:
        return None
    u = urlparse(url)
    return HiveMetastoreServer(u.hostname or "127.0.0.1", u.port or 9083)


def shared() -> HiveMetastoreServer:
    """The one metastore of this test process (see
    :func:`tests.servers.common.shared_server`; a throwaway one is Hive 3); started only by the
    tests that ask for it."""
    return shared_server("hive-metastore", from_env, ThrowawayHiveMetastore)
