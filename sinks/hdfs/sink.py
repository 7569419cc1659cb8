"""The hdfs sink factory (``type = "hdfs"``)."""
from __future__ import annotations

from typing import ClassVar

from sinks.files.sink import FilesSink
from sinks.hdfs.config import HdfsSinkConfig


class HdfsSink(FilesSink):
    """Exactly-once part files on HDFS: :class:`~sinks.files.sink.FilesSink` over WebHDFS
    (its writer and committer work on any :mod:`runtime.fs` filesystem).  ``check`` creates
    ``path`` and proves a file can be written there (the namenode and a datanode answer)."""

    config_class: ClassVar[type[HdfsSinkConfig]] = HdfsSinkConfig

    def __init__(self, config: HdfsSinkConfig):
        super().__init__(config)
