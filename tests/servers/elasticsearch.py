"""An Elasticsearch-API server for the integration tests: a real OpenSearch 2.19 node
(:mod:`tests.servers.opensearch`, from Maven Central) on free ports, or the service named by
``HUB_TEST_ELASTICSEARCH`` (e.g. ``http://localhost:9200``, docker-compose's Elasticsearch 8).

``HUB_STAND_INS=1`` runs ``osmem-server`` (an in-memory OpenSearch-compatible server
from PyPI, not in the test extra: ``pip install osmem-server``) instead.  What it adds: it
starts in a fraction of a second, where the real node needs 3 to 13 s, and needs no Java, for
a quick loop while editing the sink.  What it lacks: it is not the real thing (it sent the
``X-Elastic-Product`` header real OpenSearch does not send, which hid that the sink failed
every request against OpenSearch); the default suite does not use it.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any


@dataclass
class ElasticsearchService:
    """Where the tests find the server, and the sink options it needs."""

    url: str
    #: sink options the server needs besides hosts (none: the sink tells OpenSearch from
    #: Elasticsearch by itself)
    options: dict[str, Any] = field(default_factory=dict)
    _server: Any = None

    def client(self) -> Any:
        from sinks.elasticsearch.client import connect
        from sinks.elasticsearch.config import ElasticsearchSinkConfig

        return connect(ElasticsearchSinkConfig.model_validate({"hosts": [self.url],
                                                               **self.options}))

    @property
    def node(self) -> Any:
        """The :class:`~tests.servers.opensearch.ThrowawayOpenSearch` behind this service
        when the tests started one (tests may kill and restart it), else None."""
        from tests.servers.opensearch import ThrowawayOpenSearch

        return self._server if isinstance(self._server, ThrowawayOpenSearch) else None

    def compatibility_toml(self) -> str:
        """The sink's ``compatibility-mode`` for this server as TOML text."""
        value = self.options.get("compatibility-mode", "auto")
        return f'"{value}"' if isinstance(value, str) else str(value).lower()

    def stop(self) -> None:
        if self._server is not None:
            (getattr(self._server, "close", None) or self._server.stop)()


def from_env() -> ElasticsearchService | None:
    url = os.environ.get("HUB_TEST_ELASTICSEARCH")
    return ElasticsearchService(url) if url else None


def start_osmem() -> ElasticsearchService:
    """Start ``osmem-server`` (port 0: it picks a free port and tells us); see the module's
    docstring for what it is still good for."""
    from osmem_server import OsmemServer

    server = OsmemServer.start(japanese=False, addr="127.0.0.1:0")
    return ElasticsearchService(server.url, {}, server)


def start_opensearch() -> ElasticsearchService:
    """Start a real OpenSearch node (:class:`tests.servers.opensearch.ThrowawayOpenSearch`)."""
    from tests.servers.opensearch import ThrowawayOpenSearch

    node = ThrowawayOpenSearch().start()
    return ElasticsearchService(node.url, {}, node)


_shared: ElasticsearchService | None = None
_shared_lock = __import__("threading").Lock()


def shared() -> ElasticsearchService:
    """One server per test process (``HUB_TEST_ELASTICSEARCH``'s, else a real OpenSearch
    node, or osmem with ``HUB_STAND_INS=1``, stopped at exit): the integration fixture
    and the conformance cases use it."""
    global _shared
    with _shared_lock:
        if _shared is None:
            _shared = from_env()
            if _shared is None:
                from tests.servers.common import stand_ins, stop_at_end

                _shared = start_osmem() if stand_ins() else start_opensearch()
                stop_at_end(_shared.stop)
    return _shared
