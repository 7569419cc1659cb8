"""Options of the files source."""
from __future__ import annotations

from typing import Any, ClassVar

from pydantic import Field, PrivateAttr, field_validator, model_validator

from formats.file.base import FileFormat
from formats.message.base import MessageFormat
from formats.registry import resolve_files_format, with_format_checks
from runtime.config import Duration, check_declared_columns


class FilesSourceConfig(with_format_checks("files")):
    """Options of ``type = "files"``.  Cross-checks that need the files (a primary key or an
    event-time column among inferred columns) happen when the enumerator starts."""

    summary: ClassVar[str] = ("rows of CSV, JSON lines or Parquet files, or change events of "
                              "files of Debezium/Canal/Maxwell JSON, JSON, raw or Avro "
                              "messages; read once or watched")

    path: str = Field(description=(
        "a file, a directory (all files below it) or a glob such as \"./in/*.csv\" "
        "(\"**\" matches directories recursively), local or on HDFS "
        "(\"hdfs://namenode:9870/in/*.parquet\", through WebHDFS: the hdfs extra); "
        "in directories and globs, names starting "
        "with '.' or '_' and names ending in .inprogress, .pending or .tmp are skipped"))
    format: str = Field(description=(
        "a file format: csv, jsonl or parquet; or a message format, one message per line "
        "(json, debezium-json, canal-json, maxwell-json; raw: each line is a value) or avro "
        "(Avro container files): each message decoded as the kafka source decodes a record "
        "value (ops, before images, schema changes); a line that can't be decoded is a bad "
        "record naming file, line and byte offset (a hub.formats plugin)"))
    format_options: dict[str, Any] = Field(default_factory=dict, description=(
        "options of the format, e.g. { delimiter = \";\", header = false } for csv, "
        "{ value-type = \"STRING\" } for raw"))
    table: str | None = Field(None, description=(
        "table id (\"db.table\") of the rows; default \"files.<name>\" where <name> is the "
        "file's stem, or the name of the directory (for a glob: of the directory before the "
        "first wildcard).  Message formats: when set, every event goes to this table; "
        "default: the table the message names (debezium source.db/source.table, canal and "
        "maxwell database/table, avro source), else files.<name>"))
    columns: dict[str, str] | None = Field(None, description=(
        "the columns: name -> logical type (e.g. { id = \"BIGINT\", price = \"DECIMAL(12,2)\" });"
        " default: inferred from the first file (exact for parquet, a guess from the first "
        "MiB of values for csv and jsonl); message formats: the schema the messages carry "
        "(debezium's schema part, canal's mysqlType, avro), else inferred from the values "
        "(declare them for maxwell-json and schema-less debezium-json)"))
    primary_key: list[str] = Field([], description=(
        "primary key columns of the table (message formats: default what the messages say, "
        "canal's pkNames or the avro file's; files of debezium-json have no record keys)"))
    event_time_column: str | None = Field(None, description=(
        "column (TIMESTAMP, TIMESTAMP_LTZ, DATE or epoch milliseconds as an integer) whose "
        "values are the events' time and drive watermarks; default: the file's ts_ms column "
        "when it has one (changelog files of the files sink), else the file's modification "
        "time; message formats: default the time the message carries (debezium ts_ms, "
        "canal es, maxwell ts), else the file's modification time"))
    monitor_interval: Duration | None = Field(None, description=(
        "when set (e.g. \"10s\"), the source never ends and looks for new files at this "
        "interval; when not, it reads the files present at start and ends"))
    batch_size: int = Field(8192, ge=1, le=1_000_000, description="rows per batch (about)")

    _file_format: FileFormat | MessageFormat | None = PrivateAttr(default=None)

    @field_validator("path")
    @classmethod
    def _path_not_empty(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("path must not be empty")
        return v

    @field_validator("monitor_interval")
    @classmethod
    def _positive_interval(cls, v: float | None) -> float | None:
        if v is not None and v <= 0:
            raise ValueError("monitor-interval must be positive")
        return v

    @model_validator(mode="after")
    def _check_columns(self) -> FilesSourceConfig:
        if self.table is not None and not self.table.strip():
            raise ValueError("table must not be empty")
        if self.columns is not None:
            check_declared_columns(self.columns, self.primary_key)
            if self.event_time_column is not None and self.event_time_column not in self.columns:
                raise ValueError(f"event-time-column: {self.event_time_column!r} is not among "
                                 "the columns")
        # Message formats name tables, columns and keys in their own options.
        self._file_format = resolve_files_format(self.format, self.format_options, {
            "table": self.table, "columns": self.columns,
            "primary-key": self.primary_key or None})
        return self

    @property
    def file_format(self) -> FileFormat | MessageFormat:
        """The resolved, configured format: a file format, or a message format whose
        messages the files hold."""
        assert self._file_format is not None, "FilesSourceConfig was built without validation"
        return self._file_format
