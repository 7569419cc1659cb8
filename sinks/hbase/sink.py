"""The HBase sink factory (``type = "hbase"``)."""
from __future__ import annotations

from typing import Any, ClassVar

from runtime.errors import TransientError
from runtime.sink import Committer, Sink, SinkWriter, WriterContext
from sinks.hbase.committer import Applier, HBaseCommitter
from sinks.hbase.config import HBaseSinkConfig
from sinks.hbase.writer import HBaseSinkWriter


class HBaseSink(Sink):
    """Exactly-once rows in HBase over Thrift (see :mod:`sinks.hbase`)."""

    config_class: ClassVar[type[HBaseSinkConfig]] = HBaseSinkConfig

    def __init__(self, config: HBaseSinkConfig):
        self.config = config

    def check(self) -> None:
        from sinks.hbase.client import HBaseClient

        client = HBaseClient(self.config.model_copy(update={"max_retries": 0}))
        try:
            client.connection().tables()
        except Exception as exc:  # noqa: BLE001 - one line for any reason the server is away
            # transient: a server still down at a restart is waited for as [restart] says
            where = f"{self.config.host}:{self.config.port}"
            raise TransientError(f"hbase sink: can't reach the Thrift server at {where}: "
                                 f"{type(exc).__name__}: {exc}") from None
        finally:
            client.close()

    def create_writer(self, context: WriterContext, state: dict[str, Any] | None) -> SinkWriter:
        applier = Applier(self.config) if self.config.delivery == "at-least-once" else None
        return HBaseSinkWriter(self.config, context, applier, state)

    def create_committer(self) -> Committer:
        return HBaseCommitter(self.config)
