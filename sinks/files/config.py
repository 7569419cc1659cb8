"""Options of the files sink."""
from __future__ import annotations

from typing import Any, ClassVar, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, PrivateAttr, field_validator, model_validator

from formats.file.base import FileFormat
from formats.message.base import MessageFormat
from formats.registry import resolve_files_format, with_format_checks
from runtime.config import Duration, Size
from runtime.fs import filesystem, is_url, normpath


class FilesSinkConfig(with_format_checks("files")):
    """Typed options of ``type = "files"``.

    Validating the model also resolves ``format`` with its ``format-options``: an unknown
    format or bad format options are validation errors located at ``format`` and
    ``format-options.<key>`` (see :mod:`formats.registry`).
    """

    summary: ClassVar[str] = ("Part files (Parquet, JSONL, CSV, Debezium/Canal/Maxwell JSON, Avro, "
                              "...) on a local filesystem or HDFS")

    path: str = Field(
        description="Root directory; files go to {path}/{db}/{table}/{partition}/ (see layout; "
                    "{db} and {table} each one folder name: '/', '\\', '%', ':', control "
                    "characters and a leading '.' or '#' are percent-encoded, so '..' is "
                    "'%2E.'). A local path, or hdfs://[user@]namenode:9870/dir for HDFS through "
                    "WebHDFS (the namenode's HTTP port).")
    layout: Literal["nested", "key-value", "warehouse"] = Field(
        "nested", description="Folders of a table below path. \"nested\": {db}/{table}/. "
                              "\"key-value\": db={db}/table={table}/, so a reader of the "
                              "whole lake with Hive partitioning (pyarrow.dataset, Polars, "
                              "DuckDB, Spark: hive_partitioning) sees db and table as columns "
                              "and keeps the tables apart by filtering on them. \"warehouse\": "
                              "{db}.db/{table}/, the layout of Hive's and Spark's warehouse "
                              "(one root per table). A table without a database is in "
                              "db=default / default.db in the last two.")
    format: str = Field(
        "parquet", description="Format of the part files (a hub.formats plugin): a file format "
                               "(parquet, jsonl, csv: rows plus op, ts_ms and seq columns) or a "
                               "message format, one message per line as a Kafka record value "
                               "would carry it (json, debezium-json, canal-json, maxwell-json; "
                               "raw: one value per line, a value with a line break is a bad "
                               "record) or avro (Avro container files of change-event "
                               "envelopes, schema in the file header, no registry). The file "
                               "extension follows the format (.parquet, .json, .avro, .txt).")
    format_options: dict[str, Any] = Field(
        default_factory=dict,
        description="Options of the format, e.g. {compression = \"zstd\"} (parquet), "
                    "{schema-include = true} (debezium-json), {codec = \"null\"} (avro).")
    rolling_file_size: Size = Field(
        "128MB", validate_default=True,
        description="Roll to a new part file once the current one reaches this size.")
    rolling_interval: Duration = Field(
        "15min", validate_default=True,
        description="Roll a part file open longer than this at its next write. "
                    "Part files also roll at every checkpoint.")
    seq_column: str = Field(
        "seq", description="Name of the source-order column of changelog files (file formats): "
                           "int64, the events' versions (binlog position, Kafka offset, file "
                           "offset; where the source gives none, nanoseconds at the writer, "
                           "strictly increasing), so a reader orders the changes of a key "
                           "without ties; \"\" leaves it out. Set another name when a table "
                           "has a column named seq.")
    partition_format: str | None = Field(
        None, description="strftime pattern of event-time partitions, e.g. "
                          "\"dt=%Y-%m-%d/hr=%H\"; the finest unit in it is the partition "
                          "granularity. Unset: no partitions.")
    partition_time_column: str | None = Field(
        None, description="Column holding the event time used for partitions: a TIMESTAMP, "
                          "TIMESTAMP_LTZ, DATE or integer epoch-milliseconds column. "
                          "Default: the change event time (ts_ms).")
    partition_time_zone: str = Field(
        "UTC", description="Time zone in which partitions are cut (and in which TIMESTAMP "
                           "wall-clock values are read).")
    success_file: bool = Field(
        True, description="Write _SUCCESS into a partition once the watermark passes its end "
                          "(the same as partition-commit-policy = [\"success-file\"]; "
                          "partition-commit-policy, when set, decides).")
    partition_commit_policy: list[Literal["success-file", "metastore"]] | None = Field(
        None, description="What happens when a partition is complete (the watermark passed its "
                          "end), as Flink's sink.partition-commit.policy.kind: \"success-file\" "
                          "writes _SUCCESS into it; \"metastore\" registers it in a Hive "
                          "Metastore (metastore-uri): the external table is created at its "
                          "first commit (columns from the rows' schema, op/ts_ms/seq included; "
                          "partition columns, as strings, from partition-format's key=value "
                          "segments; storage by format: parquet, jsonl as JSON text, csv, avro "
                          "with the envelopes' schema as avro.schema.literal), "
                          "new columns are added to it, and each complete partition is added "
                          "once (an existing one is left alone). Unpartitioned tables are "
                          "registered at their first commit. Default: [\"success-file\"] "
                          "(or [] with success-file = false).")
    metastore_uri: str | None = Field(
        None, description="thrift://host:port of the Hive Metastore (port 9083 when omitted); "
                          "needed by partition-commit-policy \"metastore\".")
    metastore_database: str = Field(
        "{db}", description="Metastore database of a table: a template with {db} (the "
                            "source database; 'default' when there is none) and {table}. "
                            "Created when missing. Hive lowercases names and takes letters, "
                            "digits and '_' only.")
    metastore_table: str = Field(
        "{table}", description="Metastore table name: a template with {db} and {table}, "
                               "e.g. \"{db}_{table}\" for one database of all tables.")
    metastore_location: str | None = Field(
        None, description="The sink's path as the metastore's readers reach it, when that is "
                          "not path itself: e.g. hdfs://namenode:8020/lake for path = "
                          "\"hdfs://namenode:9870/lake\" (WebHDFS's HTTP port). Default: "
                          "path, a local path as file:///..., an hdfs:// path as "
                          "webhdfs://namenode:9870/... (the same WebHDFS, which Hadoop's "
                          "clients read too).")

    _file_format: FileFormat | MessageFormat | None = PrivateAttr(default=None)

    @field_validator("path")
    @classmethod
    def _path_not_empty(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("path must not be empty")
        if is_url(v):
            filesystem(v)  # an unsupported scheme fails here, naming the supported ones
        return v

    @field_validator("rolling_file_size")
    @classmethod
    def _positive_size(cls, v: int) -> int:
        if v <= 0:
            raise ValueError("rolling-file-size must be positive")
        return v

    @field_validator("rolling_interval")
    @classmethod
    def _positive_interval(cls, v: float) -> float:
        if v <= 0:
            raise ValueError("rolling-interval must be positive")
        return v

    @field_validator("partition_format")
    @classmethod
    def _check_partition_format(cls, v: str | None) -> str | None:
        if v is None:
            return v
        from sinks.files.partition import granularity_of

        granularity_of(v)  # raises ValueError naming what is wrong
        parts = v.split("/")
        if v.startswith("/") or any(p in ("", ".", "..") for p in parts):
            raise ValueError(f"partition-format must be a relative path without empty, '.' or "
                             f"'..' segments, got {v!r}")
        return v

    @field_validator("partition_time_zone")
    @classmethod
    def _check_zone(cls, v: str) -> str:
        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {v!r} (use an IANA name like "
                             f"'Europe/Berlin')") from None
        return v

    @model_validator(mode="after")
    def _resolve_format(self) -> FilesSinkConfig:
        if self.partition_time_column and not self.partition_format:
            raise ValueError("partition-time-column is set but partition-format is not: "
                             "set partition-format to partition by event time")
        self._file_format = resolve_files_format(self.format, self.format_options)
        self._check_commit_policy()
        return self

    def _check_commit_policy(self) -> None:
        policy = self.partition_commit_policy
        if policy is None:
            return
        if len(set(policy)) != len(policy):
            raise ValueError(f"partition-commit-policy repeats a policy: {policy}")
        if ("success_file" in self.model_fields_set and not self.success_file
                and "success-file" in policy):
            raise ValueError("success-file = false contradicts partition-commit-policy "
                             "\"success-file\": set only partition-commit-policy")
        if "metastore" not in policy:
            return
        if not self.metastore_uri:
            raise ValueError("partition-commit-policy \"metastore\" needs metastore-uri "
                             "(thrift://host:9083)")
        from sinks.files.hive import partition_keys, storage_of
        from sinks.files.metastore import parse_uri

        parse_uri(self.metastore_uri)
        storage_of(self.format, self.format_options)
        partition_keys(self.partition_format)

    @property
    def commit_policies(self) -> tuple[str, ...]:
        """The partition-commit policies in force (``success-file`` and/or ``metastore``)."""
        if self.partition_commit_policy is not None:
            return tuple(self.partition_commit_policy)
        return ("success-file",) if self.success_file else ()

    @property
    def file_format(self) -> FileFormat | MessageFormat:
        """The resolved, configured format: a file format, or a message format whose
        messages the part files hold."""
        assert self._file_format is not None, "FilesSinkConfig was built without validation"
        return self._file_format

    @property
    def extension(self) -> str:
        """File name extension of the part files, without the dot."""
        fmt = self.file_format
        return fmt.extension if isinstance(fmt, FileFormat) else fmt.file_extension

    @property
    def root(self) -> str:
        """``path`` as an absolute, normalised path or URL (committables name files by it)."""
        return normpath(self.path)

