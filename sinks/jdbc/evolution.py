"""Schema-evolution modes (the Flink CDC behaviours): which DDL a schema change becomes.

Plans are computed against the target table as it is, so applying a change twice (a replay
after a restore) plans nothing the second time.
"""
from __future__ import annotations

import logging

from runtime.schema import SchemaChange, TableSchema
from sinks.jdbc.dialect import Dialect, TableRef
from sinks.jdbc.types import is_widening

log = logging.getLogger(__name__)


def plan(dialect: Dialect, mode: str, change: SchemaChange, table: TableRef,
         current: dict[str, bool] | None, previous: TableSchema | None) -> list[str]:
    """DDL statements for ``change`` under ``mode`` (``evolve``, ``try-evolve`` or
    ``lenient``), given the target's ``current`` columns (name -> nullable, None when the
    table does not exist) and the source schema ``previous`` to the change."""
    kind, d = change.kind, change.details
    if current is None:
        return []  # nothing to change; data that follows creates the table (auto-create)
    lenient = mode == "lenient"
    schema = change.schema
    if kind == "add_column":
        assert schema is not None
        column = schema.column(d["column"])
        return [] if column.name in current else [dialect.add_column_sql(table, column)]
    if kind == "drop_column":
        name = d["column"]
        if name not in current:
            return []
        if not lenient:
            return [dialect.drop_column_sql(table, name)]
        if current[name] or previous is None or name not in previous.names:
            return []
        return [dialect.drop_not_null_sql(table, previous.column(name))]
    if kind == "rename_column":
        assert schema is not None
        old, new = d["old"], d["new"]
        if not lenient:
            return ([dialect.rename_column_sql(table, old, new)]
                    if old in current and new not in current else [])
        out = [] if new in current else [dialect.add_column_sql(table, schema.column(new))]
        if old in current and not current[old] and previous is not None and old in previous.names:
            out.append(dialect.drop_not_null_sql(table, previous.column(old)))
        return out
    if kind == "alter_column_type":
        assert schema is not None
        column = schema.column(d["column"])
        if column.name not in current:
            return []
        if lenient and previous is not None and column.name in previous.names:
            old = previous.column(column.name).type
            if not is_widening(old, column.type):
                log.info("jdbc sink: %s: type change of %s from %s to %s is not a widening; "
                         "lenient schema evolution keeps the column as it is", table,
                         column.name, old, column.type)
                return []
        return [dialect.alter_type_sql(table, column, column.name in schema.primary_key)]
    if kind == "truncate_table":
        return [] if lenient else [dialect.truncate_sql(table)]
    if kind == "drop_table":
        return [] if lenient else [dialect.drop_table_sql(table)]
    return []
