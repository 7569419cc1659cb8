"""What a Hive Metastore is told about the files sink's tables: Hive column types of the part
files' Arrow schema, the storage format (input/output format and SerDe) of each file format,
partition keys and values of ``partition-format``, and Hive names.  Pure functions, no client.

Type mapping (Arrow -> Hive), as Hive's Parquet reader sees the files:

* int8/16/32/64 -> tinyint/smallint/int/bigint; uint8/16/32 -> smallint/int/bigint (the next
  signed type holds every value); uint64 -> decimal(20,0);
* float32/64 -> float/double; bool -> boolean; string -> string; binary -> binary;
* date32 -> date; timestamp (any unit, with or without zone) -> timestamp;
* decimal(p,s) with p <= 38 -> decimal(p,s);
* list / struct / map -> array / struct / map of the mapped types.

Types Hive has none for (TIME, durations, decimals wider than 38 digits ...) raise
:class:`~runtime.errors.TerminalError` naming table, column and type.  The avro format's
files hold change-event envelopes: their columns come from the envelope's Avro schema
(:func:`avro_hive_columns`), which the table also carries as ``avro.schema.literal``, where
Hive's AvroSerDe reads it.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

import pyarrow as pa

from runtime.errors import ConfigError, TerminalError

#: Hive names: letters, digits, underscores (the metastore refuses others); Hive lowercases.
_NAME = re.compile(r"^[A-Za-z0-9_]+$")


@dataclass(frozen=True)
class Storage:
    """How Hive reads the files of a format."""

    input_format: str
    output_format: str
    serde: str
    serde_parameters: dict[str, str]
    table_parameters: dict[str, str]


_TEXT_IN = "org.apache.hadoop.mapred.TextInputFormat"
_TEXT_OUT = "org.apache.hadoop.hive.ql.io.HiveIgnoreKeyTextOutputFormat"


def storage_of(format_name: str, format_options: dict[str, object]) -> Storage:
    """The Hive storage of the files sink's ``format`` (parquet, jsonl, csv).  Other formats
    (message formats: change-event envelopes, not rows) raise ConfigError."""
    if format_name == "parquet":
        return Storage("org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat",
                       "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat",
                       "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe", {}, {})
    if format_name == "jsonl":
        return Storage(_TEXT_IN, _TEXT_OUT, "org.apache.hadoop.hive.serde2.JsonSerDe", {}, {})
    if format_name == "csv":
        delimiter = str(format_options.get("delimiter", ","))
        header = bool(format_options.get("header", True))
        return Storage(_TEXT_IN, _TEXT_OUT, "org.apache.hadoop.hive.serde2.OpenCSVSerde",
                       {"separatorChar": delimiter, "quoteChar": '"', "escapeChar": "\\"},
                       {"skip.header.line.count": "1"} if header else {})
    if format_name == "avro":
        # the table's schema goes in avro.schema.literal (a table parameter of each table)
        return Storage("org.apache.hadoop.hive.ql.io.avro.AvroContainerInputFormat",
                       "org.apache.hadoop.hive.ql.io.avro.AvroContainerOutputFormat",
                       "org.apache.hadoop.hive.serde2.avro.AvroSerDe", {}, {})
    raise ConfigError(f"partition-commit-policy \"metastore\" registers tables of the formats "
                      f"parquet, jsonl, csv and avro; format {format_name!r} holds change-event "
                      f"messages Hive has no reader for", key="partition-commit-policy")


def hive_type(t: pa.DataType, table: str, column: str) -> str:
    """The Hive type of Arrow type ``t`` (see the module's table)."""
    if pa.types.is_boolean(t):
        return "boolean"
    if pa.types.is_signed_integer(t):
        return {8: "tinyint", 16: "smallint", 32: "int", 64: "bigint"}[t.bit_width]
    if pa.types.is_unsigned_integer(t):
        return {8: "smallint", 16: "int", 32: "bigint", 64: "decimal(20,0)"}[t.bit_width]
    if pa.types.is_float32(t):
        return "float"
    if pa.types.is_float64(t):
        return "double"
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        return "string"
    if pa.types.is_binary(t) or pa.types.is_large_binary(t) or pa.types.is_fixed_size_binary(t):
        return "binary"
    if pa.types.is_date32(t):
        return "date"
    if pa.types.is_timestamp(t):
        return "timestamp"
    if pa.types.is_decimal(t) and t.precision <= 38:
        return f"decimal({t.precision},{t.scale})"
    if pa.types.is_list(t) or pa.types.is_large_list(t):
        return f"array<{hive_type(t.value_type, table, column)}>"
    if pa.types.is_struct(t):
        fields = ",".join(f"{f.name}:{hive_type(f.type, table, column)}" for f in t)
        return f"struct<{fields}>"
    if pa.types.is_map(t):
        return (f"map<{hive_type(t.key_type, table, column)},"
                f"{hive_type(t.item_type, table, column)}>")
    raise TerminalError(f"files sink: table {table}, column {column!r}: Hive has no type for "
                        f"{t}; route the column through a cast, or drop \"metastore\" from "
                        f"partition-commit-policy")


_AVRO_LOGICAL = {"date": "date", "timestamp-millis": "timestamp",
                 "timestamp-micros": "timestamp", "local-timestamp-millis": "timestamp",
                 "local-timestamp-micros": "timestamp"}
_AVRO_PRIMITIVE = {"boolean": "boolean", "int": "int", "long": "bigint", "float": "float",
                   "double": "double", "bytes": "binary", "string": "string", "enum": "string",
                   "fixed": "binary"}


def avro_hive_columns(record: dict, table: str) -> list[tuple[str, str]]:
    """``[(name, hive type), ...]`` of the fields of Avro record schema ``record`` (the
    envelopes of the avro format): records -> struct, ``[null, X]`` -> X, arrays, maps,
    decimal/date/timestamp logical types -> decimal/date/timestamp, the rest by their Avro
    type (a TIME, an Avro long of microseconds, -> bigint)."""
    named: dict[str, str] = {}

    def walk(t: object, column: str) -> str:
        if isinstance(t, str):
            if t in _AVRO_PRIMITIVE:
                return _AVRO_PRIMITIVE[t]
            if t in named:
                return named[t]
        elif isinstance(t, list):
            branches = [b for b in t if b != "null"]
            if len(branches) == 1:
                return walk(branches[0], column)
        elif isinstance(t, dict):
            kind, logical = t.get("type"), t.get("logicalType")
            if logical == "decimal":
                return f"decimal({t['precision']},{t.get('scale', 0)})"
            if logical in _AVRO_LOGICAL:
                return _AVRO_LOGICAL[logical]
            if kind == "record":
                fields = ",".join(f"{f['name']}:{walk(f['type'], column)}" for f in t["fields"])
                hive = named[t["name"]] = f"struct<{fields}>"
                return hive
            if kind == "array":
                return f"array<{walk(t['items'], column)}>"
            if kind == "map":
                return f"map<string,{walk(t['values'], column)}>"
            if kind in ("enum", "fixed"):
                return _AVRO_PRIMITIVE[str(kind)]
            return walk(kind, column)
        raise TerminalError(f"files sink: table {table}, column {column!r}: Hive has no type "
                            f"for Avro type {t}")

    return [(f["name"], walk(f["type"], f["name"])) for f in record["fields"]]


def hive_columns(schema: pa.Schema, table: str) -> list[tuple[str, str]]:
    """``[(name, hive type), ...]`` of the part files' schema."""
    return [(f.name, hive_type(f.type, table, f.name)) for f in schema]


def partition_keys(partition_format: str | None) -> list[str]:
    """The partition columns of ``partition-format``: ``dt=%Y-%m-%d/hr=%H`` -> [dt, hr].

    Raises ValueError when a segment is not ``key=value`` (Hive finds partitions by such
    folder names) or a key is not a Hive name."""
    if not partition_format:
        return []
    keys = []
    for segment in partition_format.split("/"):
        key, eq, _value = segment.partition("=")
        if not eq or "%" in key or not _NAME.match(key):
            raise ValueError(f"partition-commit-policy \"metastore\" needs partition-format "
                             f"segments of the form key=value with a plain key (like "
                             f"dt=%Y-%m-%d/hr=%H), got {segment!r}")
        keys.append(key.lower())
    if len(set(keys)) != len(keys):
        raise ValueError(f"partition-format {partition_format!r} repeats a partition key")
    return keys


def partition_values(partition_dir: str) -> list[str]:
    """``dt=2024-01-01/hr=03`` -> ["2024-01-01", "03"]."""
    return [segment.partition("=")[2] for segment in partition_dir.split("/")]


def hive_name(template: str, db: str, table: str, what: str) -> str:
    """``template`` with ``{db}`` and ``{table}`` filled in, lowercased as Hive stores names.
    Raises TerminalError when the result is not a Hive name."""
    name = template.replace("{db}", db).replace("{table}", table).lower()
    if not _NAME.match(name):
        raise TerminalError(f"files sink: table {db}.{table} gives the metastore {what} name "
                            f"{name!r}, which Hive refuses (letters, digits and '_' only); "
                            f"set metastore-{what} to a template that gives one")
    return name
