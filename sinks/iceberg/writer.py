"""The Iceberg writer: stages each subtask's batches in write-ahead-log segments (see
:class:`~sinks.lake.writer.LakeSinkWriter`); the committer turns them into Iceberg commits."""
from __future__ import annotations

from sinks.lake.writer import LakeSinkWriter


class IcebergSinkWriter(LakeSinkWriter):
    sink_name = "iceberg"
