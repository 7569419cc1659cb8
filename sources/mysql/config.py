"""Options of the MySQL/MariaDB CDC source (named after Flink CDC's where one exists)."""
from __future__ import annotations

import random
import re
from typing import Literal

from pydantic import Field, SecretStr, field_validator, model_validator

from runtime.config import ConnectorConfig, Duration

StartupMode = Literal["initial", "initial-only", "latest", "earliest", "timestamp", "specific-offset"]


class MySqlSourceConfig(ConnectorConfig):
    summary = "MySQL 8 / MariaDB 10.6+ CDC: lock-free parallel snapshot, then the binlog, exactly once"

    hostname: str = Field("127.0.0.1", description="server host")
    port: int = Field(3306, ge=1, le=65535, description="server port")
    username: str = Field("root", description=(
        "user with SELECT, REPLICATION SLAVE and REPLICATION CLIENT (no RELOAD, no LOCK TABLES)"))
    password: SecretStr = Field(SecretStr(""), description="password (use ${ENV} interpolation)")
    tables: list[str] = Field(..., min_length=1, description=(
        "regexes matched against whole `db.table` ids, e.g. [\"shop\\\\.orders\", \"shop\\\\.order_\\\\d+\"]; "
        "a name holding a dot or a double quote is double-quoted in its id (`shop.\"my.orders\"`)"))
    tables_exclude: list[str] = Field([], description="regexes of `db.table` ids to leave out")
    server_id: str = Field("", description=(
        "replica server id, or a range like \"5400-5404\" (one id per parallel reader); must be "
        "unique among the server's replicas. Default: a random id in 5400-6400"))
    startup_mode: StartupMode = Field("initial", description=(
        "initial: snapshot then binlog; initial-only: snapshot and stop; latest: binlog from "
        "now; earliest: binlog from the oldest file kept; timestamp: binlog changes from "
        "startup-timestamp-millis on; specific-offset: binlog from the given GTID set or "
        "file/position"))
    startup_specific_offset_gtid_set: str = Field("", description=(
        "with specific-offset: MySQL `uuid:1-100` set or MariaDB `0-1-100` position"))
    startup_specific_offset_file: str = Field("", description="with specific-offset: binlog file")
    startup_specific_offset_pos: int = Field(4, ge=4, description="with specific-offset: position")
    startup_timestamp_millis: int = Field(0, ge=0, description="with timestamp: epoch milliseconds")
    chunk_size: int = Field(8096, ge=16, le=1_000_000, description=(
        "rows per snapshot chunk (a chunk is read, and made consistent, at once)"))
    chunk_key_column: dict[str, str] = Field({}, description=(
        "chunk key per table id, for tables without a primary key or to chunk by another "
        "indexed column: { \"shop.logs\" = \"created_at\" }"))
    fetch_size: int = Field(8192, ge=64, le=1_000_000, description=(
        "change events per batch emitted from the binlog"))
    heartbeat_interval: Duration = Field(1.0, gt=0, description=(
        "the server sends a heartbeat when the binlog is idle this long: keeps the position and "
        "the lag fresh and flushes the last changes"))
    flush_interval: Duration = Field(0.1, gt=0, description=(
        "longest time binlog changes wait to fill a batch"))
    connect_timeout: Duration = Field(30.0, gt=0, description="connection timeout")
    connect_max_retries: int = Field(0, ge=0, description=(
        "a lost binlog stream (server restart, broken or silent connection) is reconnected "
        "with backoff (0.5s doubling up to 30s), each wait logged: after this many attempts in "
        "a row without data the pipeline stops; 0 = never (a source outage is waited out)"))
    snapshot_newly_added_tables: bool = Field(False, description=(
        "on a restart from a checkpoint, snapshot the existing rows of tables that match "
        "`tables` now but were not captured before (a widened pattern, or tables created while "
        "the pipeline was down), while the binlog goes on; off: such tables are captured from "
        "the binlog position on only (Flink CDC's scan.newly-added-table.enabled)"))
    include_schema_changes: bool = Field(True, description=(
        "emit schema-change events (create/alter/rename/drop/truncate) in order with the data"))
    zero_date: Literal["null", "error"] = Field("null", description=(
        "zero or invalid dates (0000-00-00): NULL, or an error naming the record"))

    @field_validator("tables", "tables_exclude")
    @classmethod
    def _regexes(cls, v: list[str]) -> list[str]:
        for p in v:
            try:
                re.compile(p)
            except re.error as exc:
                raise ValueError(f"bad regex {p!r}: {exc}") from None
        return v

    @field_validator("server_id")
    @classmethod
    def _server_id(cls, v: str) -> str:
        v = str(v).strip()
        if v and not re.fullmatch(r"\d+(\s*-\s*\d+)?", v):
            raise ValueError(f"expected a number or a range like \"5400-5404\", got {v!r}")
        return v

    @model_validator(mode="after")
    def _check(self) -> MySqlSourceConfig:
        if self.startup_mode == "specific-offset" and not (
                self.startup_specific_offset_gtid_set or self.startup_specific_offset_file):
            raise ValueError("startup-mode = \"specific-offset\" needs "
                             "startup-specific-offset-gtid-set or startup-specific-offset-file")
        if self.startup_mode == "timestamp" and not self.startup_timestamp_millis:
            raise ValueError("startup-mode = \"timestamp\" needs startup-timestamp-millis")
        return self

    def server_ids(self, count: int) -> list[int]:
        """One id per reader."""
        if not self.server_id:
            first = random.randint(5400, 6400 - count)
            return list(range(first, first + count))
        a, _, b = self.server_id.partition("-")
        lo, hi = int(a), int(b or a)
        if hi - lo + 1 < count and b:
            raise ValueError(f"server-id range {self.server_id!r} has fewer ids than the "
                             f"{count} parallel readers")
        return [lo + i if b else lo + i for i in range(count)]

    def connection_settings(self) -> dict:
        return {"host": self.hostname, "port": self.port, "user": self.username,
                "password": self.password.get_secret_value(), "charset": "utf8mb4",
                "connect_timeout": int(self.connect_timeout)}
