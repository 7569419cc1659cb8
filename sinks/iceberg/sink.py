"""The Iceberg sink factory (``type = "iceberg"``)."""
from __future__ import annotations

from typing import ClassVar

from runtime.errors import MissingExtraError
from sinks.iceberg.config import IcebergSinkConfig
from sinks.lake.sink import LakeSink

try:
    from sinks.iceberg.committer import IcebergCommitter
except ImportError as exc:  # pyiceberg missing: one line naming the extra, at first use
    _MISSING: ImportError | None = exc
    IcebergCommitter = None  # type: ignore[assignment,misc]
else:
    _MISSING = None


class IcebergSink(LakeSink):
    """Apache Iceberg tables holding each source table's current state (or its changelog),
    exactly once (see :mod:`sinks.iceberg`): the lake-table writers stage the changes, the
    :class:`~sinks.iceberg.committer.IcebergCommitter` commits them."""

    config_class: ClassVar[type[IcebergSinkConfig]] = IcebergSinkConfig
    committer_class = IcebergCommitter  # type: ignore[assignment]

    def __init__(self, config: IcebergSinkConfig):
        if _MISSING is not None:
            raise MissingExtraError("pyiceberg", "iceberg") from _MISSING
        super().__init__(config)

    def layout(self):
        from sinks.iceberg.writer import IcebergLayout

        return IcebergLayout(self.config)

    def check(self) -> None:
        from sinks.iceberg.catalog import check_reachable

        check_reachable(self.config)
