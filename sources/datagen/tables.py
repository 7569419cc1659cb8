"""The built-in tables of datagen: typed columns and, where it reads better, value choices."""
from __future__ import annotations

from dataclasses import dataclass

from runtime.schema import Column, TableSchema
from runtime.schema import table_id as make_table_id
from runtime.types import parse_type


@dataclass(frozen=True)
class ColumnSpec:
    name: str
    type: str
    #: values to pick from (strings) instead of generated text
    choices: tuple[str, ...] = ()
    #: this column carries the event time of the change
    event_time: bool = False
    nullable: bool = True


TEMPLATES: dict[str, tuple[ColumnSpec, ...]] = {
    "orders": (
        ColumnSpec("id", "BIGINT", nullable=False),
        ColumnSpec("customer_id", "INT"),
        ColumnSpec("amount", "DECIMAL(12,2)"),
        ColumnSpec("status", "VARCHAR(16)",
                   choices=("pending", "paid", "shipped", "delivered", "cancelled", "refunded")),
        ColumnSpec("note", "VARCHAR(200)"),
        ColumnSpec("updated_at", "TIMESTAMP(6)", event_time=True),
        ColumnSpec("attrs", "JSON"),
    ),
    "customers": (
        ColumnSpec("id", "BIGINT", nullable=False),
        ColumnSpec("name", "VARCHAR(100)"),
        ColumnSpec("email", "VARCHAR(200)"),
        ColumnSpec("country", "CHAR(2)", choices=("DE", "FR", "US", "CN", "BR", "IN", "JP", "NG")),
        ColumnSpec("vip", "BOOLEAN"),
        ColumnSpec("signup_date", "DATE"),
        ColumnSpec("balance", "DECIMAL(10,2)"),
    ),
    "all_types": (
        ColumnSpec("id", "BIGINT", nullable=False),
        ColumnSpec("c_boolean", "BOOLEAN"), ColumnSpec("c_tinyint", "TINYINT"),
        ColumnSpec("c_smallint", "SMALLINT"), ColumnSpec("c_int", "INT"),
        ColumnSpec("c_bigint", "BIGINT"), ColumnSpec("c_decimal", "DECIMAL(20,6)"),
        ColumnSpec("c_unsigned_bigint", "DECIMAL(20,0)"), ColumnSpec("c_wide_decimal", "DECIMAL(65,30)"),
        ColumnSpec("c_float", "FLOAT"), ColumnSpec("c_double", "DOUBLE"),
        ColumnSpec("c_char", "CHAR(8)"), ColumnSpec("c_varchar", "VARCHAR(64)"),
        ColumnSpec("c_string", "STRING"), ColumnSpec("c_binary", "BINARY(16)"),
        ColumnSpec("c_bytes", "BYTES"), ColumnSpec("c_date", "DATE"), ColumnSpec("c_time", "TIME(6)"),
        ColumnSpec("c_timestamp", "TIMESTAMP(6)"), ColumnSpec("c_timestamp_ltz", "TIMESTAMP_LTZ(6)"),
        ColumnSpec("c_json", "JSON"), ColumnSpec("c_tags", "ARRAY<STRING>"),
    ),
}


def template_schema(database: str, name: str) -> tuple[TableSchema, tuple[ColumnSpec, ...]]:
    specs = TEMPLATES[name]
    cols = tuple(Column(s.name, parse_type(s.type), s.nullable) for s in specs)
    return TableSchema(make_table_id(database, name), cols, (specs[0].name,)), specs


def custom_schema(database: str, table: str, columns: dict[str, str],
                  primary_key: list[str]) -> tuple[TableSchema, tuple[ColumnSpec, ...]]:
    pk = tuple(primary_key) or (next(iter(columns)),)
    specs = tuple(ColumnSpec(n, t, nullable=n not in pk) for n, t in columns.items())
    cols = tuple(Column(s.name, parse_type(s.type), s.nullable) for s in specs)
    table_id = table if "." in table else make_table_id(database, table)
    return TableSchema(table_id, cols, pk), specs
