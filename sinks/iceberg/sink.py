"""The Iceberg sink factory (``type = "iceberg"``)."""
from __future__ import annotations

from typing import Any, ClassVar

from runtime.errors import MissingExtraError
from runtime.sink import Committer, Sink, SinkWriter, WriterContext
from sinks.iceberg.config import IcebergSinkConfig


class IcebergSink(Sink):
    """Apache Iceberg tables holding each source table's current state (or its changelog),
    exactly once (see :mod:`sinks.iceberg`)."""

    config_class: ClassVar[type[IcebergSinkConfig]] = IcebergSinkConfig

    def __init__(self, config: IcebergSinkConfig):
        self.config = config

    def check(self) -> None:
        try:
            import pyiceberg  # noqa: F401
        except ImportError:
            raise MissingExtraError("pyiceberg", "iceberg") from None
        from sinks.iceberg.catalog import check_reachable

        check_reachable(self.config)

    def existing_output(self, pipeline: str) -> list[str]:
        """The tables holding snapshots of this pipeline's app id (see
        :meth:`~sinks.iceberg.committer.IcebergCommitter.existing_output`)."""
        from runtime.sink import CommitContext
        from sinks.iceberg.committer import IcebergCommitter

        return IcebergCommitter(self.config).existing_output(CommitContext(pipeline, 0, None))

    def create_writer(self, context: WriterContext, state: dict[str, Any] | None) -> SinkWriter:
        from sinks.iceberg.writer import IcebergSinkWriter

        return IcebergSinkWriter(context)

    def create_committer(self) -> Committer:
        from sinks.iceberg.committer import IcebergCommitter

        return IcebergCommitter(self.config)
