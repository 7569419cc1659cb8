"""Options of the Iceberg sink."""
from __future__ import annotations

import os
from typing import ClassVar, Literal

from pydantic import Field, field_validator, model_validator

from runtime.errors import ConfigError
from runtime.schema import split_table_id
from runtime.config import check_template
from sinks.lake.config import LakeSinkConfig



class IcebergSinkConfig(LakeSinkConfig):
    """Typed options of ``type = "iceberg"`` (Apache Iceberg tables through pyiceberg)."""

    summary: ClassVar[str] = ("Apache Iceberg tables holding each table's current state "
                              "(or its changelog), exactly once")

    warehouse: str = Field(
        ..., description="Where new tables' files go: a local folder, or a URL pyiceberg's "
                         "file IO writes (s3://, gs://, abfs://, hdfs:// with pyarrow's HDFS).")
    catalog_type: Literal["sql", "rest", "hive"] = Field(
        "sql", description="sql: a SQLAlchemy database (a SQLite file under the warehouse by "
                           "default: nothing to start; PostgreSQL for shared use); rest: an "
                           "Iceberg REST catalog; hive: a Hive Metastore (thrift://).")
    catalog_uri: str = Field(
        "", description="sql: a SQLAlchemy URL, e.g. postgresql+psycopg://user:pw@host/db "
                        "(default sqlite:///<warehouse>/catalog.db); rest: http(s)://...; "
                        "hive: thrift://host:9083.")
    catalog_name: str = Field("hub", description="Name of the catalog (sql: rows of this "
                                                 "catalog in the catalog database).")
    catalog_properties: dict[str, str] = Field(
        default_factory=dict, description="More pyiceberg catalog properties (credentials, "
                                          "s3.endpoint, token, ...).")
    namespace: str = Field("{db}", description="Namespace of a source table's Iceberg table; "
                                               "{db} and {table} are the parts of its id; "
                                               "dots make nested namespaces.")
    table: str = Field("{table}", description="Name of the Iceberg table; {db} and {table} "
                                              "as in namespace.")
    table_properties: dict[str, str] = Field(
        default_factory=dict, description="Properties of tables the sink creates (e.g. "
                                          "write.parquet.compression-codec).")

    @field_validator("namespace", "table")
    @classmethod
    def _check_template(cls, v: str) -> str:
        check_template(v, ("db", "table"), "name template")
        return v

    @model_validator(mode="after")
    def _check_catalog(self) -> IcebergSinkConfig:
        if self.catalog_type in ("rest", "hive") and not self.catalog_uri:
            raise ValueError(f"catalog-uri: a {self.catalog_type} catalog needs its URI")
        return self

    def catalog_url(self) -> str:
        """The catalog's URI (the default SQLite file for sql without one)."""
        if self.catalog_uri:
            return self.catalog_uri
        return "sqlite:///" + os.path.join(os.path.abspath(self.warehouse), "catalog.db")

    def warehouse_url(self) -> str:
        """The warehouse as pyiceberg wants it: a URL (``file://`` for a local folder)."""
        if "://" in self.warehouse:
            return self.warehouse.rstrip("/")
        return "file://" + os.path.abspath(self.warehouse)

    def identifier(self, table_id: str) -> tuple[str, ...]:
        """The Iceberg identifier (namespace levels..., table) of a source table id."""
        try:
            db, name = split_table_id(table_id)
        except ValueError as exc:
            raise ConfigError(f"iceberg: table {table_id!r}: {exc}", key="table") from None
        ns = self.namespace.replace("{db}", db).replace("{table}", name)
        tbl = self.table.replace("{db}", db).replace("{table}", name)
        levels = tuple(ns.split(".")) if ns else ()
        if not tbl or not levels or any(not p or "/" in p for p in (*levels, tbl)):
            raise ConfigError(f"iceberg: table {table_id!r} gives no valid Iceberg name "
                              f"(namespace {ns!r}, table {tbl!r}): a namespace is needed, and "
                              "no part may be empty or hold a '/'", key="namespace")
        return (*levels, tbl)
