"""Captured tables: which tables match the patterns, and their columns as the server says.

A :class:`MySqlTable` is the logical :class:`TableSchema` plus the native column descriptions
the decoders need (signedness, charset, ENUM members ...).  It serialises to plain data: the
schema history of the binlog split lives in the checkpoint as a dict of these.
"""
from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import Any

import pymysql

from runtime.errors import ConfigError
from runtime.schema import Column, TableSchema, split_table_id
from runtime.schema import table_id as make_table_id
from runtime.types import DataType
from sources.mysql.types import NativeColumn

log = logging.getLogger("hub.sources.mysql")
_BAD_FIELD = 1054

_SYSTEM_DBS = ("mysql", "information_schema", "performance_schema", "sys")


@dataclass(frozen=True)
class MySqlTable:
    """A captured table: logical schema, native columns, and the chunk key."""

    schema: TableSchema
    natives: tuple[NativeColumn, ...]
    chunk_key: tuple[str, ...]

    @property
    def table_id(self) -> str:
        return self.schema.table

    def to_dict(self) -> dict[str, Any]:
        return {"schema": self.schema.to_dict(), "natives": [n.to_dict() for n in self.natives],
                "chunk_key": list(self.chunk_key)}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> MySqlTable:
        return cls(TableSchema.from_dict(d["schema"]),
                   tuple(NativeColumn.from_dict(n) for n in d["natives"]), tuple(d["chunk_key"]))


class TableFilter:
    """``tables`` / ``tables-exclude`` regexes, matched against the whole ``db.table``."""

    def __init__(self, include: list[str], exclude: list[str]):
        self.include = [re.compile(p) for p in include]
        self.exclude = [re.compile(p) for p in exclude]

    def __call__(self, table_id: str) -> bool:
        db = split_table_id(table_id)[0]
        if db in _SYSTEM_DBS:
            return False
        return (any(p.fullmatch(table_id) for p in self.include)
                and not any(p.fullmatch(table_id) for p in self.exclude))


def list_tables(conn: Any, accept: TableFilter) -> list[str]:
    with conn.cursor() as cur:
        cur.execute("SELECT TABLE_SCHEMA, TABLE_NAME FROM information_schema.TABLES "
                    "WHERE TABLE_TYPE = 'BASE TABLE' ORDER BY TABLE_SCHEMA, TABLE_NAME")
        ids = [make_table_id(db, name) for db, name in cur.fetchall()]
    return [t for t in ids if accept(t)]


def describe(conn: Any, table_id: str, chunk_key_columns: dict[str, str]) -> MySqlTable | None:
    """The table as it is now, or None when it does not exist."""
    db, name = split_table_id(table_id)
    with conn.cursor() as cur:
        cur.execute(
            "SELECT COLUMN_NAME, DATA_TYPE, COLUMN_TYPE, IS_NULLABLE, CHARACTER_SET_NAME, "
            "CHARACTER_MAXIMUM_LENGTH, NUMERIC_PRECISION, NUMERIC_SCALE, DATETIME_PRECISION, "
            "COLUMN_KEY FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = %s AND TABLE_NAME = %s "
            "ORDER BY ORDINAL_POSITION", (db, name))
        rows = cur.fetchall()
        if not rows:
            return None
        cur.execute(
            "SELECT COLUMN_NAME FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = %s "
            "AND TABLE_NAME = %s AND INDEX_NAME = 'PRIMARY' ORDER BY SEQ_IN_INDEX", (db, name))
        pk = tuple(r[0] for r in cur.fetchall())
        json_columns = _mariadb_json_columns(cur, db, name)
    natives = []
    for (cname, dtype, ctype, nullable, charset, clen, prec, scale, fsp, _key) in rows:
        dtype = str(dtype).lower()
        if dtype in ("char", "varchar", "binary", "varbinary"):
            length = int(clen) if clen is not None else None
        else:
            length = None
        natives.append(NativeColumn(
            name=cname, data_type=dtype, column_type=str(ctype), nullable=nullable == "YES",
            charset=charset, length=length,
            precision=int(prec) if prec is not None else (_bit_width(ctype) if dtype == "bit" else None),
            scale=int(scale) if scale is not None else None, fsp=int(fsp or 0)))
    # MariaDB's JSON is LONGTEXT with a json_valid() check: the same text, but JSON to sinks.
    columns = tuple(Column(n.name, DataType("JSON") if n.name in json_columns else n.logical(),
                           n.nullable, source_type=n.source_type()) for n in natives)
    configured = chunk_key_columns.get(table_id)
    chunk_key = (configured,) if configured else pk
    if configured and configured not in [n.name for n in natives]:
        raise ConfigError(f"{table_id} has no column {configured!r}", key="source.chunk-key-column")
    return MySqlTable(TableSchema(table_id, columns, pk), tuple(natives), chunk_key)


_JSON_VALID = re.compile(r"json_valid\(`((?:[^`]|``)+)`\)", re.IGNORECASE)


def _mariadb_json_columns(cur: Any, db: str, table: str) -> set[str]:
    """Columns declared JSON on MariaDB (its JSON type is an alias of LONGTEXT that adds a
    ``json_valid(col)`` check constraint).  MySQL has no such constraints: empty there."""
    try:
        cur.execute("SELECT CHECK_CLAUSE FROM information_schema.CHECK_CONSTRAINTS "
                    "WHERE CONSTRAINT_SCHEMA = %s AND TABLE_NAME = %s", (db, table))
    except pymysql.err.MySQLError as exc:
        if exc.args[0] != _BAD_FIELD:
            raise
        # MySQL 8's CHECK_CONSTRAINTS has no TABLE_NAME column, and no JSON alias either
        log.debug("mysql: %s.%s: no MariaDB JSON columns to look for (%s)", db, table, exc)
        return set()
    return {m.group(1).replace("``", "`") for (clause,) in cur.fetchall()
            for m in _JSON_VALID.finditer(str(clause))}


def _bit_width(column_type: str) -> int:
    m = re.search(r"\((\d+)\)", column_type)
    return int(m.group(1)) if m else 1
