"""A throwaway Apache Iceberg REST catalog (``RESTCatalogServer`` of iceberg-open-api's test
fixtures, what the apache/iceberg-rest-fixture image runs: a JdbcCatalog on a SQLite file
behind the REST API, jars from Maven Central through :mod:`tests.servers.maven`), or the one
named by ``HUB_TEST_ICEBERG_REST`` (``http://127.0.0.1:8181`` for a docker-compose service
whose warehouse is ``HUB_TEST_ICEBERG_REST_WAREHOUSE``, a folder both can write)."""
from __future__ import annotations

import os
import subprocess
import tempfile
import urllib.request
from dataclasses import dataclass

from tests.servers.common import free_port, shared_server, stop_server, wait_until


@dataclass(frozen=True)
class IcebergRestServer:
    uri: str
    warehouse: str  # a local folder the server and the tests both write


class ThrowawayIcebergRest:
    def __init__(self) -> None:
        self.dir = tempfile.mkdtemp(prefix="hub-iceberg-rest-")
        self.port = free_port()
        self.proc: subprocess.Popen | None = None

    def start(self) -> IcebergRestServer:
        from tests.servers import maven

        jars = maven.jars("iceberg-rest")
        warehouse = os.path.join(self.dir, "warehouse")
        os.makedirs(warehouse)
        env = {**os.environ, "CATALOG_WAREHOUSE": f"file://{warehouse}",
               "CATALOG_URI": f"jdbc:sqlite:file:{self.dir}/catalog.db",
               "CATALOG_REST_PORT": str(self.port)}
        log = os.path.join(self.dir, "server.log")
        with open(log, "w") as out:
            self.proc = subprocess.Popen(
                [maven.java(), "-Xmx256m", "-cp", f"{jars}/*",
                 "org.apache.iceberg.rest.RESTCatalogServer"],
                env=env, stdout=out, stderr=subprocess.STDOUT)
        uri = f"http://127.0.0.1:{self.port}"
        wait_until(lambda: urllib.request.urlopen(f"{uri}/v1/config", timeout=2).status == 200,
                   90, "the Iceberg REST catalog", self.proc, log)
        return IcebergRestServer(uri, warehouse)

    def stop(self) -> None:
        stop_server(self.proc, self.dir)


def from_env() -> IcebergRestServer | None:
    uri = os.environ.get("HUB_TEST_ICEBERG_REST")
    if not uri:
        return None
    return IcebergRestServer(uri, os.environ.get("HUB_TEST_ICEBERG_REST_WAREHOUSE", ""))


def shared() -> IcebergRestServer:
    return shared_server("iceberg-rest", from_env, ThrowawayIcebergRest)
