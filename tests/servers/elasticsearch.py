"""An Elasticsearch-API server for the integration tests: ``osmem-server`` (an in-memory
OpenSearch-compatible server from PyPI) on a free port, or the service named by
``HUB_TEST_ELASTICSEARCH`` (e.g. ``http://localhost:9200``, docker-compose's Elasticsearch 8).
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any


@dataclass
class ElasticsearchService:
    """Where the tests find the server, and the sink options it needs."""

    url: str
    #: osmem (like OpenSearch) rejects the elasticsearch client's compatibility media type
    options: dict[str, Any] = field(default_factory=dict)
    _server: Any = None

    def client(self) -> Any:
        from sinks.elasticsearch.client import connect
        from sinks.elasticsearch.config import ElasticsearchSinkConfig

        return connect(ElasticsearchSinkConfig.model_validate({"hosts": [self.url],
                                                               **self.options}))

    def stop(self) -> None:
        if self._server is not None:
            self._server.close()


def from_env() -> ElasticsearchService | None:
    url = os.environ.get("HUB_TEST_ELASTICSEARCH")
    return ElasticsearchService(url) if url else None


def start_osmem() -> ElasticsearchService:
    """Start ``osmem-server`` (port 0: it picks a free port and tells us)."""
    from osmem_server import OsmemServer

    server = OsmemServer.start(japanese=False, addr="127.0.0.1:0")
    return ElasticsearchService(server.url, {"compatibility-mode": False}, server)


_shared: ElasticsearchService | None = None
_shared_lock = __import__("threading").Lock()


def shared() -> ElasticsearchService:
    """One server per test process (``HUB_TEST_ELASTICSEARCH``'s, or osmem stopped at exit):
    the integration fixture and the conformance cases use it."""
    global _shared
    with _shared_lock:
        if _shared is None:
            _shared = from_env()
            if _shared is None:
                import atexit

                _shared = start_osmem()
                atexit.register(_shared.stop)
    return _shared
