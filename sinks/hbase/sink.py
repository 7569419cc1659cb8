"""The HBase sink factory (``type = "hbase"``)."""
from __future__ import annotations

from typing import Any, ClassVar

from runtime.errors import HubError, TransientError
from runtime.rescale import SupportsWriterStateRescale, WriterState
from runtime.sink import Committer, Sink, SinkWriter, WriterContext
from sinks.hbase.committer import Applier, HBaseCommitter
from sinks.hbase.config import HBaseSinkConfig
from sinks.hbase.writer import HBaseSinkWriter


class HBaseSink(Sink, SupportsWriterStateRescale):
    """Exactly-once rows in HBase over Thrift (see :mod:`sinks.hbase`)."""

    config_class: ClassVar[type[HBaseSinkConfig]] = HBaseSinkConfig

    def __init__(self, config: HBaseSinkConfig):
        self.config = config

    def check(self) -> None:
        """List the tables once, through the client's one error translation
        (:func:`sinks.hbase.client.translate`): a server that can't be reached is a transient
        error, waited for as ``[restart]`` says; an answer the client can't read is taken for
        one too."""
        from sinks.hbase.client import HBaseClient

        where = f"{self.config.host}:{self.config.port}"
        client = HBaseClient(self.config.model_copy(update={"max_retries": 0}))
        try:
            client.tables()
        except HubError as exc:
            raise type(exc)(f"hbase sink: can't reach the Thrift server at {where}: "
                            f"{exc}") from None
        except Exception as exc:  # noqa: BLE001 - one line for any reason the server is away
            raise TransientError(f"hbase sink: can't reach the Thrift server at {where}: "
                                 f"{type(exc).__name__}: {exc}") from None
        finally:
            client.close()

    def create_writer(self, context: WriterContext, state: dict[str, Any] | None) -> SinkWriter:
        applier = Applier(self.config) if self.config.delivery == "at-least-once" else None
        return HBaseSinkWriter(self.config, context, applier, state)

    def create_committer(self) -> Committer:
        return HBaseCommitter(self.config)

    def rescale_writer_states(self, states: list[WriterState], parallelism: int
                              ) -> list[WriterState]:
        """At-least-once a writer's state is the last cell timestamp it wrote
        (``last_timestamp``): every new writer starts above the highest of them, so what it
        writes again after the restore lands above whatever any old writer wrote (a lower
        one would leave an older change on top).  Exactly-once writers hold no state."""
        stamps = [int(s["last_timestamp"]) for s in states if s and "last_timestamp" in s]
        if not stamps:
            return [None] * parallelism
        return [{"last_timestamp": max(stamps)} for _ in range(parallelism)]
