"""Options of the Delta Lake sink."""
from __future__ import annotations

import os
import re
from typing import ClassVar

from pydantic import Field, SecretStr, field_validator

from runtime.fs import encode_segment, is_url
from runtime.schema import split_table_id
from runtime.config import check_template
from sinks.lake.config import LakeSinkConfig

#: URL schemes the ``deltalake`` package writes to (object stores, HDFS over RPC or WebHDFS).
SCHEMES = ("file", "s3", "s3a", "gs", "az", "abfs", "abfss", "adl", "azure", "hdfs", "viewfs",
           "webhdfs", "lakefs", "memory")


class DeltaSinkConfig(LakeSinkConfig):
    """Typed options of ``type = "delta"`` (Delta Lake tables through the ``deltalake``
    package): those every lake-table sink has (write mode, partitions, file size,
    maintenance) plus where the tables live."""

    summary: ClassVar[str] = ("Delta Lake tables holding each table's current state (MERGE by "
                              "primary key) or its changes, exactly once")

    path: str = Field(
        description="Root of the tables: a local folder, or a URL the deltalake package "
                    "writes to: s3://bucket/lake, gs://, az://, abfss:// (credentials in "
                    "storage-options), hdfs://namenode:8020/lake (HDFS RPC, no Hadoop "
                    "needed) or webhdfs://namenode/lake (WebHDFS; storage-options "
                    "{\"opendal.endpoint\" = \"http://namenode:9870\"}: the URL's port is "
                    "not used).")
    table_path: str = Field(
        "{path}/{db}/{table}",
        description="Where the Delta table of a source table lives: {path} is path, {db} and "
                    "{table} the parts of the table id, each one folder name; a table id "
                    "without a database drops the {db} folder. A name that is no safe folder "
                    "name (holding '/', '\\', '%', ':' or control characters, or starting "
                    "with '.' or '#') stops the pipeline naming the table: route it to another "
                    "name (deltalake decodes percent-escapes in paths, so the files sink's "
                    "escaping would land elsewhere).")
    storage_options: dict[str, SecretStr] = Field(
        default_factory=dict,
        description="Options of the object store, passed to deltalake as they are, e.g. "
                    "{AWS_REGION = \"eu-west-1\", AWS_ACCESS_KEY_ID = \"${KEY}\"}; values are "
                    "secrets, never logged.")
    new_keys_append_threshold: int = Field(
        0, ge=0,
        description="0 (the default): every checkpoint is one Delta commit per table. N > 0: "
                    "a checkpoint of a table with a primary key that inserts at least N keys "
                    "the Delta table does not hold, besides other changes, is committed in two "
                    "commits: a MERGE of the other changes, then an append of those new keys "
                    "(a MERGE that inserts them costs more time and memory and rewrites them "
                    "with every file it touches). Between the two commits a reader sees the "
                    "checkpoint's updates and deletes without its new keys; both carry the "
                    "checkpoint, and a replay after a crash applies neither twice.")
    table_properties: dict[str, str] = Field(
        default_factory=dict,
        description="Delta table properties of the tables the sink creates, e.g. "
                    "{\"delta.logRetentionDuration\" = \"interval 30 days\"}.")

    @field_validator("path")
    @classmethod
    def _check_path(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("path must not be empty")
        if "%" in v:
            raise ValueError(f"path {v!r} holds '%': deltalake decodes percent-escapes in "
                             f"paths, so the tables would land elsewhere")
        if is_url(v):
            scheme = v.split("://", 1)[0].lower()
            if scheme not in SCHEMES:
                raise ValueError(f"path {v!r}: the deltalake package has no {scheme}:// "
                                 f"store (use a local folder or one of "
                                 f"{', '.join(s + '://' for s in SCHEMES)})")
        return v

    @field_validator("table_path")
    @classmethod
    def _check_table_path(cls, v: str) -> str:
        check_template(v, ("path", "db", "table"), "table-path")
        if "{table}" not in v:
            raise ValueError(f"table-path {v!r} has no {{table}}: every source table needs "
                             "a Delta table of its own (merge tables with a [[route]])")
        return v

    @property
    def root(self) -> str:
        """``path``, absolute when local, without a trailing slash."""
        if is_url(self.path):
            return self.path.rstrip("/")
        return os.path.abspath(self.path)

    def table_uri(self, table_id: str) -> str:
        """The location of the Delta table of ``table_id`` (``table-path`` filled in).
        Raises ValueError for an id with an empty table name, or a name that is no safe
        folder name (see ``table-path``)."""
        db, name = split_table_id(table_id)
        segments = {}
        for part, value in (("db", db), ("table", name)):
            segment = encode_segment(value) if value else ""
            if "%" in segment:
                raise ValueError(f"{part} name {value!r} is no safe folder name (it holds "
                                 f"'/', '\\', '%', ':' or control characters, or starts "
                                 f"with '.' or '#'); route the table to another name")
            segments[part] = segment
        path = self.table_path.replace("{path}", self.root)
        path = path.replace("{db}", segments["db"]).replace("{table}", segments["table"])
        scheme, sep, rest = path.rpartition("://")
        rest = re.sub(r"(?<=.)/{2,}", "/", rest).rstrip("/")  # an empty {db} folder
        return f"{scheme}{sep}{rest}" if sep else rest

    def storage(self) -> dict[str, str] | None:
        """``storage-options`` in clear, for deltalake (None when there are none)."""
        return {k: v.get_secret_value() for k, v in self.storage_options.items()} or None
