"""Options of the hdfs sink: those of the files sink, with an HDFS ``path``."""
from __future__ import annotations

from typing import ClassVar

from pydantic import Field, field_validator

from runtime.fs import HDFS_SCHEMES, filesystem, is_url
from sinks.files.config import FilesSinkConfig


class HdfsSinkConfig(FilesSinkConfig):
    """Typed options of ``type = "hdfs"``: every option of ``type = "files"``; ``path`` is an
    ``hdfs://[user@]namenode:9870/dir`` URL (the port is the namenode's WebHDFS HTTP port;
    the user defaults to ``$HADOOP_USER_NAME``, then the login name)."""

    summary: ClassVar[str] = "Part files (Parquet, JSONL, CSV, ...) on HDFS through WebHDFS"

    path: str = Field(
        description="Root folder on HDFS, e.g. hdfs://namenode:9870/lake; files go to "
                    "{path}/{db}/{table}/{partition}/ (see layout; {db} and {table} each one "
                    "folder name, encoded as for type = \"files\").")

    @field_validator("path")
    @classmethod
    def _hdfs_url(cls, v: str) -> str:
        if not is_url(v) or v.split("://", 1)[0].lower() not in HDFS_SCHEMES:
            raise ValueError(f"path must be an hdfs:// URL such as "
                             f"hdfs://namenode:9870/lake (got {v!r}); for local folders use "
                             f"type = \"files\"")
        filesystem(v)  # a missing hdfs extra fails here, with the pip command
        return v
