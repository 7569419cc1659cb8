"""Options of the HBase sink."""
from __future__ import annotations

import re
from typing import ClassVar, Literal

from pydantic import Field, field_validator, model_validator

from runtime.config import ConnectorConfig, Duration

_PLACEHOLDER = re.compile(r"\{([^{}]*)\}")
_NAME = re.compile(r"[A-Za-z0-9_.-]+")


class HBaseSinkConfig(ConnectorConfig):
    """Typed options of ``type = "hbase"`` (an HBase Thrift1 server, via happybase)."""

    summary: ClassVar[str] = "Rows in HBase tables over Thrift, exactly once"

    host: str = Field("localhost", description="Host of the HBase Thrift (Thrift1) server.")
    port: int = Field(9090, ge=1, le=65535, description="Port of the HBase Thrift server.")
    transport: Literal["buffered", "framed"] = Field(
        "buffered", description="Thrift transport (as the server runs: -threadpool is "
                                "buffered, -nonblocking/-hsha framed).")
    protocol: Literal["binary", "compact"] = Field("binary", description="Thrift protocol.")
    timeout: Duration = Field("60s", validate_default=True,
                              description="Socket timeout of Thrift calls.")
    table: str = Field(
        "{db}_{table}", description="HBase table of a source table; {db} and {table} are "
                                    "replaced by the parts of the table id. May hold a "
                                    "namespace: \"{db}:{table}\".")
    column_family: str = Field("cf", description="Family of the columns not in "
                                                 "column-families.")
    column_families: dict[str, str] = Field(
        default_factory=dict, description="Family of single columns, e.g. {note = \"text\"}.")
    value_encoding: Literal["string", "binary"] = Field(
        "string", description="string: values as UTF-8 text; binary: HBase Bytes.toBytes "
                              "encodings (long, int, double, BigDecimal, ...).")
    create_table: bool = Field(True, description="Create missing tables with their families.")
    max_versions: int = Field(1, ge=1, description="VERSIONS of families the sink creates.")
    delivery: Literal["exactly-once", "at-least-once"] = Field(
        "exactly-once", description="exactly-once: a write-ahead log, applied after the "
                                    "checkpoint; at-least-once: write at once (still idempotent).")
    batch_size: int = Field(1000, ge=1, description="Rows per Thrift mutateRows call.")
    max_retries: int = Field(6, ge=0, description="Retries of a failed Thrift call, with "
                                                  "backoff and a new connection.")
    retry_backoff: Duration = Field("200ms", validate_default=True,
                                    description="First backoff; doubles up to 10s.")

    @field_validator("table")
    @classmethod
    def _check_table(cls, v: str) -> str:
        unknown = [p for p in _PLACEHOLDER.findall(v) if p not in ("db", "table")]
        if unknown:
            raise ValueError(f"unknown placeholder {{{unknown[0]}}} in table {v!r}; "
                             "use {db} and {table}")
        probe = v.replace("{db}", "d").replace("{table}", "t")
        if not all(_NAME.fullmatch(part) for part in probe.split(":", 1)):
            raise ValueError(f"table {v!r}: HBase names use letters, digits, _ . and -, "
                             "with at most one ':' after a namespace")
        return v

    @model_validator(mode="after")
    def _check_families(self) -> HBaseSinkConfig:
        for fam in {self.column_family, *self.column_families.values()}:
            if not _NAME.fullmatch(fam) or fam.startswith("."):
                raise ValueError(f"column family {fam!r}: use letters, digits, _ and -")
        return self

    def table_for(self, table_id: str) -> str:
        """The HBase table of ``table_id`` (``"shop.orders"`` -> ``"shop_orders"``)."""
        db, _, table = table_id.rpartition(".")
        name = self.table.replace("{db}", db).replace("{table}", table)
        return re.sub(r"[^A-Za-z0-9_.:-]", "_", name)

    def family_of(self, column: str) -> str:
        return self.column_families.get(column, self.column_family)
