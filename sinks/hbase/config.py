"""Options of the HBase sink."""
from __future__ import annotations

import re
from typing import ClassVar, Literal

from pydantic import Field, field_validator, model_validator

from runtime.config import ConnectorConfig, Duration, check_template
from runtime.errors import ConfigError
from runtime.schema import split_table_id

_NAME = re.compile(r"[A-Za-z0-9_.-]+")
_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]")


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
                                    "replaced by the parts of the table id, with every "
                                    "character an HBase name can't hold (not a letter, digit, "
                                    "_ . or -) replaced by _. May hold a namespace: "
                                    "\"{db}:{table}\". Two tables whose names differ but whose "
                                    "HBase tables don't (a b and a_b) stop the pipeline with "
                                    "an error naming both; the same name from the same text "
                                    "(\"{table}\" for shop1.orders and shop2.orders) is a "
                                    "deliberate merge.")
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
    apply_threads: int = Field(
        4, ge=1, le=64, description="Write-ahead-log segments (one per writer subtask) a "
                                    "commit applies at the same time, each over a connection "
                                    "of its own (exactly-once).")
    max_retries: int = Field(6, ge=0, description="Retries of a failed Thrift call, with "
                                                  "backoff and a new connection.")
    retry_backoff: Duration = Field("200ms", validate_default=True,
                                    description="First backoff; doubles up to 10s.")

    @field_validator("table")
    @classmethod
    def _check_table(cls, v: str) -> str:
        check_template(v, ("db", "table"), "table")
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
        """The HBase table of ``table_id`` (``"shop.orders"`` -> ``"shop_orders"``).

        The mapping, documented on ``table``: in {db} and {table} every character an HBase
        name can't hold (anything but letters, digits, ``_ . -``, so also ``:``, spaces,
        quotes, slashes and non-ASCII letters) becomes ``_``; a ``:`` comes from the template
        only.  Raises :class:`ConfigError` naming the table when the result is no valid HBase
        name (a table part starting with ``.`` or ``-``, a namespace with other than letters,
        digits and ``_``).  Distinct tables may map to one name (``a b`` and ``a_b``): the
        applier refuses that (see :meth:`table_source`)."""
        db, table = _parts(table_id)
        name = self.table.replace("{db}", _UNSAFE.sub("_", db)).replace(
            "{table}", _UNSAFE.sub("_", table))
        namespace, colon, qualifier = name.rpartition(":")
        if (not qualifier or qualifier[0] in ".-"
                or (colon and not re.fullmatch(r"[A-Za-z0-9_]+", namespace))):
            raise ConfigError(f"hbase: table {table_id!r} gives no valid HBase table name "
                              f"({name!r}: a namespace of letters, digits and _, a table "
                              f"name not starting with . or -); set table so that it does",
                              key="table")
        return name

    def table_source(self, table_id: str) -> str:
        """``table`` with the table's own names, before :meth:`table_for` made them valid:
        two tables with the same HBase table but different sources collide (``a b`` and
        ``a_b``), while the same source is a deliberate merge (``table = "{table}"`` for
        shards ``shop1.orders`` and ``shop2.orders``)."""
        db, table = _parts(table_id)
        return self.table.replace("{db}", db).replace("{table}", table)

    def family_of(self, column: str) -> str:
        return self.column_families.get(column, self.column_family)


def _parts(table_id: str) -> tuple[str, str]:
    try:
        return split_table_id(table_id)
    except ValueError as exc:  # a malformed id (from a route, say)
        raise ConfigError(f"hbase: table {table_id!r}: {exc}", key="table") from None
