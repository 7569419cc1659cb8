"""Type mapping of the files source: the table schema (declared or inferred from a file), the
Arrow schema files are read with, and event times from a column."""
from __future__ import annotations

import os

import pyarrow as pa

from formats.file.base import FileFormat, annotated_arrow_schema, logical_type
from runtime.batch import OP_COLUMN, SEQ_COLUMN, TS_COLUMN
from runtime.errors import ConfigError, HubError
from runtime.fs import filesystem, is_unreachable, os_error
from runtime.schema import Column, TableSchema
from runtime.types import parse_type
from sources.files.config import FilesSourceConfig

#: Types an event-time column may have.
EVENT_TIME_KINDS = ("TIMESTAMP", "TIMESTAMP_LTZ", "DATE", "TINYINT", "SMALLINT", "INT", "BIGINT")


def declared_schema(config: FilesSourceConfig, table: str) -> TableSchema | None:
    """The schema of the ``columns`` option, or None when columns are to be inferred."""
    if config.columns is None:
        return None
    cols = tuple(Column(name, parse_type(text)) for name, text in config.columns.items())
    return _checked(TableSchema(table, cols, tuple(config.primary_key)), config)


def inferred_schema(config: FilesSourceConfig, fmt: FileFormat, table: str,
                    path: str) -> TableSchema:
    """The schema of the file at ``path``.  Changelog files (columns ``op`` and ``ts_ms``, as
    the files sink writes) give those two and the source order ``seq`` to the events, not to
    the table."""
    try:
        local, temporary = filesystem(path).local_copy(path)  # formats read local files
        try:
            arrow = fmt.infer_schema(local)
        finally:
            if temporary:
                os.remove(local)
    except (OSError, ValueError, pa.ArrowException) as exc:
        if is_unreachable(exc):  # the store, not the file: worth trying again
            raise os_error(f"files source: can't infer the columns of {path}", exc) from None
        raise HubError(f"files source: can't infer the columns of {path}: {exc}") from None
    changelog = OP_COLUMN in arrow.names and TS_COLUMN in arrow.names
    cols = tuple(Column(f.name, logical_type(f)) for f in arrow
                 if not (changelog and f.name in (OP_COLUMN, TS_COLUMN, SEQ_COLUMN)))
    missing = [k for k in config.primary_key if k not in {c.name for c in cols}]
    if missing:
        raise ConfigError(f"{missing[0]!r} is not a column of {path} "
                          f"(columns: {', '.join(c.name for c in cols)})", key="primary-key")
    return _checked(TableSchema(table, cols, tuple(config.primary_key)), config)


def _checked(schema: TableSchema, config: FilesSourceConfig) -> TableSchema:
    col = config.event_time_column
    if col is not None:
        if col not in schema.names:
            raise ConfigError(f"{col!r} is not a column of {schema.table} "
                              f"(columns: {', '.join(schema.names)})", key="event-time-column")
        kind = schema.column(col).type.kind
        if kind not in EVENT_TIME_KINDS:
            raise ConfigError(f"column {col!r} is {schema.column(col).type}; an event-time column "
                              "must be a TIMESTAMP, TIMESTAMP_LTZ, DATE or integer (epoch ms)",
                              key="event-time-column")
    return schema


def read_schema(schema: TableSchema, named_columns: bool) -> tuple[pa.Schema, bool]:
    """The Arrow schema files are read with, and whether it ends with the changelog columns
    ``op`` and ``ts_ms`` (nullable: files without them read them as nulls).  Only formats with
    column names can have optional columns; a table column named op or ts_ms is data."""
    arrow = annotated_arrow_schema(schema)
    if not named_columns or OP_COLUMN in schema.names or TS_COLUMN in schema.names:
        return arrow, False
    return arrow.append(pa.field(OP_COLUMN, pa.string())).append(
        pa.field(TS_COLUMN, pa.int64())), True


def event_time_ms(col: pa.Array) -> pa.Array:
    """Epoch milliseconds (int64) of an event-time column (naive timestamps taken as UTC)."""
    t = col.type
    if pa.types.is_timestamp(t):
        return col.cast(pa.timestamp("ms", t.tz), safe=False).cast(pa.int64())
    if pa.types.is_date(t):
        return col.cast(pa.date64()).cast(pa.int64())
    return col.cast(pa.int64())
