"""Table schemas and the in-band schema-change events.

A table is named by its id, ``"db.table"`` (a plain ``str``: cheap to hash and compare), built
by :func:`table_id` and taken apart by :func:`split_table_id` (never by splitting at a dot:
names may hold dots, and are then quoted in the id).
Schemas are immutable; a schema change produces a new one.  Both serialise to plain dicts so
schema history lives in checkpoints.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import Any

import pyarrow as pa

from runtime.types import DataType, parse_type, to_arrow


def table_id(db: str, name: str) -> str:
    """The id of table ``name`` in database ``db`` (``""``: none): ``shop.orders``.

    Names are data: a part holding a dot or a double quote (or empty, or with leading or
    trailing blanks) is double-quoted with inner quotes doubled, so the parts always come back
    apart (:func:`split_table_id`): ``("shop", "my.orders")`` -> ``shop."my.orders"``."""
    return f"{_quote_part(db)}.{_quote_part(name)}" if db else _quote_part(name)


def split_table_id(table_id: str) -> tuple[str, str]:
    """``"shop.orders"`` -> ``("shop", "orders")``; an id without a dot has an empty db.
    The inverse of :func:`table_id`; an unquoted id is split at its last dot."""
    if '"' not in table_id:
        db, dot, name = table_id.rpartition(".")
        return (db, name) if dot else ("", table_id)
    parts = _parse_quoted(table_id)
    if len(parts) == 1:
        return "", parts[0]
    if len(parts) == 2:
        return parts[0], parts[1]
    raise ValueError(f"table id {table_id!r} has {len(parts)} parts; expected db.table")


def _quote_part(part: str) -> str:
    if part and "." not in part and '"' not in part and part == part.strip():
        return part
    return '"' + part.replace('"', '""') + '"'


def _parse_quoted(text: str) -> list[str]:
    """The dot-separated parts of ``text``, each bare or double-quoted."""
    parts: list[str] = []
    i, n = 0, len(text)
    while True:
        if i < n and text[i] == '"':
            buf, i = [], i + 1
            while True:
                j = text.find('"', i)
                if j < 0:
                    raise ValueError(f"table id {text!r}: unclosed quote")
                buf.append(text[i:j])
                if text.startswith('""', j):
                    buf.append('"')
                    i = j + 2
                    continue
                i = j + 1
                break
            parts.append("".join(buf))
        else:
            j = text.find(".", i)
            j = n if j < 0 else j
            part = text[i:j]
            if '"' in part:
                raise ValueError(f"table id {text!r}: a quote inside an unquoted name")
            parts.append(part)
            i = j
        if i == n:
            return parts
        if text[i] != ".":
            raise ValueError(f"table id {text!r}: expected a dot after a quoted name")
        i += 1


@dataclass(frozen=True, slots=True)
class Column:
    name: str
    type: DataType
    nullable: bool = True
    comment: str | None = None
    #: The value rows that existed before the column was added read, as the text of a constant
    #: of the column's type (``"7"``, ``"it's"``, ``"2024-01-31"``); None when there is none
    #: or it is not a constant (``CURRENT_TIMESTAMP``).  Set on ``add_column`` changes.
    default: str | None = None
    #: The source's own type where the logical type does not tell all of it, in the source's
    #: words (MySQL: ``enum('a','b')``, ``set('x','y')``, ``bit(12)``, ``year``,
    #: ``geometry``, ``point``...; :func:`formats.mysqltypes.source_type`), else None.
    #: Formats that speak the source's vocabulary read it (Debezium's semantic names,
    #: Canal's ``mysqlType``); everything else goes by ``type`` alone.
    source_type: str | None = None

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"name": self.name, "type": str(self.type), "nullable": self.nullable}
        if self.comment:
            d["comment"] = self.comment
        if self.default is not None:
            d["default"] = self.default
        if self.source_type is not None:
            d["source_type"] = self.source_type
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Column:
        return cls(d["name"], parse_type(d["type"]), d.get("nullable", True), d.get("comment"),
                   d.get("default"), d.get("source_type"))


@dataclass(frozen=True)
class TableSchema:
    """Ordered columns with logical types, a primary key (column names, maybe empty) and
    partition keys (Flink CDC's: the columns sinks that partition tables partition by, set by
    a ``[[transform]]`` block's ``partition-keys``; other sinks ignore them)."""

    table: str
    columns: tuple[Column, ...]
    primary_key: tuple[str, ...] = ()
    partition_keys: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        names = [c.name for c in self.columns]
        missing = [k for k in self.primary_key if k not in names]
        if missing:
            raise ValueError(f"{self.table}: primary key column(s) {missing} not among columns {names}")
        missing = [k for k in self.partition_keys if k not in names]
        if missing:
            raise ValueError(f"{self.table}: partition key column(s) {missing} not among "
                             f"columns {names}")

    @cached_property
    def names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)

    @cached_property
    def key_indexes(self) -> tuple[int, ...]:
        """Positions of the primary-key columns in a row tuple."""
        return tuple(self.names.index(k) for k in self.primary_key)

    @cached_property
    def arrow_schema(self) -> pa.Schema:
        return pa.schema([pa.field(c.name, to_arrow(c.type), c.nullable) for c in self.columns])

    def index(self, name: str) -> int:
        return self.names.index(name)

    def column(self, name: str) -> Column:
        return self.columns[self.index(name)]

    def key_of(self, row: tuple) -> tuple:
        return tuple(row[i] for i in self.key_indexes)

    def with_columns(self, columns: tuple[Column, ...], table: str | None = None) -> TableSchema:
        return replace(self, columns=columns, table=table or self.table)

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"table": self.table, "columns": [c.to_dict() for c in self.columns],
                             "primary_key": list(self.primary_key)}
        if self.partition_keys:
            d["partition_keys"] = list(self.partition_keys)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TableSchema:
        return cls(d["table"], tuple(Column.from_dict(c) for c in d["columns"]),
                   tuple(d.get("primary_key", ())), tuple(d.get("partition_keys", ())))


#: Kinds of :class:`SchemaChange`, the Flink CDC set.
SCHEMA_CHANGE_KINDS = ("create_table", "add_column", "drop_column", "rename_column",
                       "alter_column_type", "truncate_table", "drop_table")


@dataclass(frozen=True)
class SchemaChange:
    """A schema change of one table, in band and in order with its data.

    ``schema`` is the table's schema *after* the change (``None`` after ``drop_table``);
    ``details`` says what changed: ``{"column": name}`` for add/drop/alter,
    ``{"old": a, "new": b}`` for rename.  ``ts_ms`` and ``position`` as for change events.
    """

    kind: str
    table: str
    schema: TableSchema | None
    details: dict[str, Any] = field(default_factory=dict)
    ts_ms: int = 0
    position: Any = None

    def __post_init__(self) -> None:
        if self.kind not in SCHEMA_CHANGE_KINDS:
            raise ValueError(f"unknown schema change kind {self.kind!r}")

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "table": self.table,
                "schema": self.schema.to_dict() if self.schema else None,
                "details": self.details, "ts_ms": self.ts_ms, "position": self.position}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> SchemaChange:
        schema = TableSchema.from_dict(d["schema"]) if d.get("schema") else None
        return cls(d["kind"], d["table"], schema, d.get("details", {}), d.get("ts_ms", 0),
                   d.get("position"))
