"""The base of the lake-table sink factories (Delta, Iceberg)."""
from __future__ import annotations

from typing import Any, ClassVar

from runtime.sink import Committer, Sink, SinkWriter, WriterContext
from sinks.lake.committer import LakeCommitter
from sinks.lake.config import LakeSinkConfig
from sinks.lake.staging import Layout
from sinks.lake.writer import LakeSinkWriter


class LakeSink(Sink):
    """Writers stage each checkpoint's changes in write-ahead-log segments, and snapshot reads
    and inserts as data files where the format gives a :meth:`layout`
    (:class:`LakeSinkWriter`); the format's committer (``committer_class``) commits them as
    one table transaction per table and checkpoint.  Keeps no writer state."""

    config_class: ClassVar[type[LakeSinkConfig]]
    committer_class: ClassVar[type[LakeCommitter]]
    #: tables it creates are partitioned by partition-by, else by their partition keys
    partitions_tables: ClassVar[bool] = True

    def __init__(self, config: LakeSinkConfig):
        self.config = config

    def layout(self) -> Layout | None:
        """How writers stage snapshot reads and inserts as the format's data files (see
        :mod:`sinks.lake.staging`); None: every change goes to the write-ahead log."""
        return None

    def create_writer(self, context: WriterContext, state: dict[str, Any] | None) -> SinkWriter:
        layout = self.layout() if self.config.stage_data_files else None
        return LakeSinkWriter(context, self.committer_class.sink_name, layout,
                              self.config.target_file_size)

    def create_committer(self) -> Committer:
        return self.committer_class(self.config)

    def existing_output(self, pipeline: str) -> list[str]:
        committer = self.committer_class(self.config)
        try:
            return committer.existing_output(pipeline)
        finally:
            committer.close()
