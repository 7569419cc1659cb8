"""The files source factory."""
from __future__ import annotations

from typing import Any, ClassVar

from formats.file.base import FileFormat
from runtime.errors import ConfigError
from runtime.source import EnumeratorContext, ReaderContext, Source, SourceReader, SplitEnumerator
from sources.files.config import FilesSourceConfig
from sources.files.enumerator import FilesEnumerator, default_table
from sources.files.reader import FilesReader
from sources.files.split import FileSplit


class FilesSource(Source):
    """Rows of CSV, JSON lines or Parquet files as change events of one table, or the change
    events of files of messages (debezium-json, canal-json, maxwell-json, json, raw, avro).

    File formats: events are inserts (``c``) unless the files are changelogs (columns ``op``
    and ``ts_ms``, as the files sink writes them): then those give each event's op and time.
    Event time is ``event-time-column``, else ``ts_ms``, else the file's modification time.
    Message formats: each message is decoded as the Kafka source decodes a record value (ops,
    before images, the table the message names, schema changes); ``table``, ``columns`` and
    ``primary-key`` become the format's options of the same names unless ``format-options``
    sets them.  The config resolves the format (so a bad format option fails at validation);
    the constructor touches no file.
    """

    config_class: ClassVar = FilesSourceConfig
    split_type: ClassVar = FileSplit

    def __init__(self, config: FilesSourceConfig):
        self.config = config
        self.format = config.file_format
        if isinstance(self.format, FileFormat) and not self.format.readable:
            raise ConfigError(f"the {config.format!r} format can't be read", key="format")
        self.table = config.table or default_table(config.path)

    @property
    def bounded(self) -> bool:
        return self.config.monitor_interval is None

    def create_enumerator(self, context: EnumeratorContext,
                          state: dict[str, Any] | None) -> SplitEnumerator:
        return FilesEnumerator(context, self.config, self.format, self.table, state)

    def create_reader(self, context: ReaderContext) -> SourceReader:
        return FilesReader(context, self.config, self.format, self.table)

