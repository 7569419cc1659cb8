"""The files source factory."""
from __future__ import annotations

from typing import Any, ClassVar

from formats.registry import resolve_format
from runtime.errors import ConfigError
from runtime.source import EnumeratorContext, ReaderContext, Source, SourceReader, SplitEnumerator
from sources.files.config import FilesSourceConfig
from sources.files.enumerator import FilesEnumerator, default_table
from sources.files.reader import FilesReader
from sources.files.split import FileSplit


class FilesSource(Source):
    """Rows of CSV, JSON lines or Parquet files as change events of one table.

    Events are inserts (``c``) unless the files are changelogs (columns ``op`` and ``ts_ms``,
    as the files sink writes them): then those give each event's op and time.  Event time is
    ``event-time-column``, else ``ts_ms``, else the file's modification time.  The constructor
    resolves the format (so a bad format option fails at validation) and touches no file.
    """

    config_class: ClassVar = FilesSourceConfig
    split_type: ClassVar = FileSplit

    def __init__(self, config: FilesSourceConfig):
        self.config = config
        self.format = resolve_format(config.format, config.format_options)
        if not self.format.readable:
            raise ConfigError(f"the {config.format!r} format can't be read", key="format")
        self.table = config.table or default_table(config.path)

    @property
    def bounded(self) -> bool:
        return self.config.monitor_interval is None

    def create_enumerator(self, context: EnumeratorContext,
                          state: dict[str, Any] | None) -> SplitEnumerator:
        return FilesEnumerator(context, self.config, self.format, self.table, state)

    def create_reader(self, context: ReaderContext) -> SourceReader:
        return FilesReader(context, self.config, self.format)
