"""The Elasticsearch sink factory (``type = "elasticsearch"``)."""
from __future__ import annotations

from typing import Any, ClassVar

from runtime.errors import HubError
from runtime.sink import Committer, Sink, SinkWriter, WriterContext
from sinks.elasticsearch.committer import Applier, ElasticsearchCommitter
from sinks.elasticsearch.config import ElasticsearchSinkConfig
from sinks.elasticsearch.writer import ElasticsearchSinkWriter


class ElasticsearchSink(Sink):
    """Exactly-once documents in Elasticsearch or OpenSearch (see
    :mod:`sinks.elasticsearch`)."""

    config_class: ClassVar[type[ElasticsearchSinkConfig]] = ElasticsearchSinkConfig

    def __init__(self, config: ElasticsearchSinkConfig):
        self.config = config

    def check(self) -> None:
        """Ask the server who it is (with ``compatibility-mode = "auto"`` connecting asks it
        too), once, through the client's one error translation (:meth:`BulkClient._once`):
        a server that can't be reached is a transient error, so the runner retries a start
        or a restart with backoff (a node down while the pipeline restarts from its
        checkpoint ended the run before); any other failure is one terminal line."""
        from sinks.elasticsearch.client import BulkClient

        hosts = ", ".join(self.config.hosts)
        client: BulkClient | None = None
        try:
            client = BulkClient(self.config)
            client.info(f"reaching {hosts}")
        except HubError:
            raise
        except Exception as exc:  # noqa: BLE001 - one line for any other reason
            raise HubError(f"elasticsearch sink: can't reach {hosts}: "
                           f"{type(exc).__name__}: {exc}") from None
        finally:
            if client is not None:
                client.close()

    def create_writer(self, context: WriterContext, state: dict[str, Any] | None) -> SinkWriter:
        applier = None
        if self.config.delivery == "at-least-once":
            applier = Applier(self.config)
        return ElasticsearchSinkWriter(self.config, context, applier)

    def create_committer(self) -> Committer:
        # Its dead letters come with each commit (CommitContext.dead_letter), not from writers.
        return ElasticsearchCommitter(self.config)
