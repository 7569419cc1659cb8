"""``format = "debezium-json"``: Debezium's change-event envelope, with or without the schema
part (JsonConverter ``schemas.enable``).

Reading: ``{"before", "after", "op", "source", "ts_ms"}``, optionally wrapped in
``{"schema", "payload"}``.  With the schema part, columns and their types come from it (every
Debezium semantic type: see :mod:`formats.codec.debezium_types`) and the primary key from the key's
schema part; without it, from declared ``columns`` or inferred from the values.  The table is
``source.db`` + ``.`` + ``source.table``.  ``op`` ``r``/``c``/``u``/``d`` are change events,
``t`` a truncate; tombstones and ``m`` (logical decoding messages) carry no change.  Messages of
Debezium's schema-change topic (``ddl`` + ``tableChanges``) become create/alter/drop schema
changes.  A change of a table's schema part between messages becomes schema-change events.

Values without the schema part are read as the format's modes say Debezium wrote them
(``decimal-handling-mode``, ``time-precision-mode``; Debezium's dotted option names are
accepted too) when ``columns`` are declared, and as plain JSON values when inferred.

Writing: what Debezium's MySQL connector writes (:mod:`formats.message.debezium_writer`).
Envelopes the hub wrote before (values in the text encodings of :mod:`formats.codec.text`,
types in ``hub.logical-type``) are still read.
"""
from __future__ import annotations

import json
from typing import Any, ClassVar

from pydantic import AliasChoices, Field

from formats.base import MessageDecoder, MessageEncoder
from formats.codec.debezium_types import (BigintUnsignedMode, DecimalMode, Modes, TimeMode,
                                          apply_natives, declared_natives, row_schema)
from formats.message.base import MessageFormat, MessageFormatConfig, event_time
from formats.message.debezium_writer import DebeziumJsonEncoder
from formats.message.envelope import EnvelopeDecoder, Event
from formats.message.values import schema_changes
from formats.mysqltypes import from_mysql
from runtime.schema import Column, SchemaChange, TableSchema, split_table_id, table_id

_OPS = {"r": "r", "c": "c", "u": "u", "d": "d"}


class DebeziumJsonConfig(MessageFormatConfig):
    summary: ClassVar[str] = "Debezium change-event envelopes (before/after/op/source/ts_ms)"

    schema_include: bool = Field(False, description=(
        "writing: wrap each envelope in {\"schema\": ..., \"payload\": ...} as Kafka Connect's "
        "JsonConverter with schemas.enable does (reading accepts both forms)"))
    decimal_handling_mode: DecimalMode = Field(
        "precise", validation_alias=AliasChoices("decimal-handling-mode", "decimal_handling_mode",
                                                 "decimal.handling.mode"),
        description=("Debezium's decimal.handling.mode: DECIMAL values as base64 scaled bytes "
                     "(precise), exact text (string) or JSON numbers (double: rounded to a "
                     "double's 15-17 digits, as Debezium does)"))
    time_precision_mode: TimeMode = Field(
        "adaptive_time_microseconds", validation_alias=AliasChoices(
            "time-precision-mode", "time_precision_mode", "time.precision.mode"),
        description=("Debezium's time.precision.mode: TIME and DATETIME as epoch-based integers "
                     "in millis/micros by column precision (adaptive, "
                     "adaptive_time_microseconds: TIME always in micros) or always millis "
                     "(connect: a value with sub-millisecond digits is an error, not rounded)"))
    bigint_unsigned_handling_mode: BigintUnsignedMode = Field(
        "long", validation_alias=AliasChoices("bigint-unsigned-handling-mode",
                                              "bigint_unsigned_handling_mode",
                                              "bigint.unsigned.handling.mode"),
        description=("Debezium's bigint.unsigned.handling.mode (long|precise), accepted for "
                     "reading: both forms are read (a JSON number or scaled bytes); BIGINT "
                     "UNSIGNED is DECIMAL(20,0) here and is written by decimal-handling-mode"))
    source_name: str = Field("hub", description=(
        "writing: source.name of the envelopes (Debezium's topic.prefix, the logical server "
        "name) and the prefix of the schema names"))

    @property
    def modes(self) -> Modes:
        return Modes(self.decimal_handling_mode, self.time_precision_mode,
                     self.bigint_unsigned_handling_mode)


class DebeziumJsonDecoder(EnvelopeDecoder):
    name = "debezium-json"

    def __init__(self, config: DebeziumJsonConfig):
        super().__init__(config)
        # schema part (its raw text) -> (schema, natives); keys' schema text -> primary key
        self._parts: dict[tuple[str, bytes], tuple[TableSchema, dict]] = {}
        self._keys: dict[bytes, tuple[str, ...]] = {}
        self._declared_natives: dict[str, dict] = {}

    def parse(self, obj: Any, key: bytes | None, ts_ms: int, topic: str, value: bytes
              ) -> list[Event | SchemaChange]:
        part = None
        if isinstance(obj, dict) and "payload" in obj and "schema" in obj:
            part, obj = obj["schema"], obj["payload"]
        if obj is None:
            return []
        if "op" not in obj:
            if "tableChanges" in obj:
                return self._history(obj, ts_ms)
            raise ValueError("no 'op' field: not a Debezium change event")
        op = obj["op"]
        source = obj.get("source") or {}
        table = self.config.table or _table_id(source, topic)
        ts = event_time(source.get("ts_ms"), obj.get("ts_ms"), ts_ms)
        if op == "t":
            schema = self.schemas.get(table)
            return [SchemaChange("truncate_table", table, schema, {}, ts)]
        if op not in _OPS:
            return []  # "m": a logical decoding message, no row change
        before, after = obj.get("before"), obj.get("after")
        schema = None
        natives = None
        if self.config.columns is not None:
            natives = self._declared_natives.get(table)
            if natives is None:
                natives = self._declared_natives[table] = declared_natives(
                    self.config.declared_schema(table), self.config.modes)
        elif part is not None:
            schema, natives = self._schema(table, part, value, key)
        if natives:
            apply_natives(before, natives)
            apply_natives(after, natives)
        if op == "d":
            if before is None:
                raise ValueError("a delete without a 'before' image")
            return [Event(table, "d", before, None, ts, schema)]
        if after is None:
            raise ValueError(f"op {op!r} without an 'after' image")
        return [Event(table, op, after, before if op == "u" else None, ts, schema)]

    def _schema(self, table: str, part: dict, value: bytes, key: bytes | None
                ) -> tuple[TableSchema, dict]:
        # The schema part is the same text for every message of a table until it changes:
        # the raw bytes before "payload" identify it without walking it again.
        cut = value.find(b'"payload"')
        cache_key = (table, value[:cut] if cut > 0 else json.dumps(part).encode())
        hit = self._parts.get(cache_key)
        if hit is None:
            fields = {f.get("field"): f for f in part.get("fields", [])}
            struct = fields.get("after") or fields.get("before")
            if struct is None:
                raise ValueError("the schema part has no 'after'/'before' field")
            hit = row_schema(table, struct, self._primary_key(key))
            self._parts[cache_key] = hit
        return hit

    def _primary_key(self, key: bytes | None) -> tuple[str, ...]:
        if self.config.primary_key:
            return tuple(self.config.primary_key)
        if not key:
            return ()
        cut = key.find(b'"payload"')
        cache_key = key[:cut] if cut > 0 else key
        pk = self._keys.get(cache_key)
        if pk is None:
            try:
                k = json.loads(key)
            except ValueError:
                return ()
            if isinstance(k, dict) and "schema" in k and "payload" in k:
                pk = tuple(f["field"] for f in (k["schema"] or {}).get("fields", []))
            elif isinstance(k, dict):
                pk = tuple(k)
            else:
                pk = ()
            if cut > 0:
                self._keys[cache_key] = pk
        return pk

    def _history(self, obj: dict, ts_ms: int) -> list[Event | SchemaChange]:
        """A message of Debezium's schema-change topic."""
        ts = event_time((obj.get("source") or {}).get("ts_ms"), obj.get("ts_ms"), ts_ms)
        out: list[Event | SchemaChange] = []
        for change in obj.get("tableChanges") or []:
            table = self.config.table or _history_table_id(change["id"])
            kind = change.get("type", "").upper()
            if kind == "DROP":
                out.append(SchemaChange("drop_table", table, None, {}, ts))
                continue
            t = change["table"]
            cols = tuple(Column(c["name"], _history_type(c), bool(c.get("optional", True)))
                         for c in sorted(t["columns"], key=lambda c: c.get("position", 0)))
            new = TableSchema(table, cols, tuple(t.get("primaryKeyColumnNames") or ()))
            old = self.schemas.get(table)
            if kind == "CREATE" or old is None:
                out.append(SchemaChange("create_table", table, new, {}, ts))
            else:
                out.extend(schema_changes(old, new, ts))
            self.schemas[table] = new
        return out


_SIZED = ("VARCHAR", "CHAR", "BINARY", "VARBINARY", "BIT", "DATETIME", "TIMESTAMP", "TIME")


def _history_type(column: dict) -> Any:
    """The logical type of a column of Debezium's schema history (``typeName``, ``length``,
    ``scale``; an unsigned type's name ends with ``UNSIGNED``)."""
    name = column["typeName"].upper()
    base, _, unsigned = name.partition(" ")
    length, scale = column.get("length"), column.get("scale")
    if base in ("DECIMAL", "NUMERIC"):
        text = f"decimal({length or 10},{scale or 0})"
    elif base in _SIZED and length:
        text = f"{base}({length})"
    else:
        text = base
    return from_mysql(f"{text} {unsigned}".strip())


def _history_table_id(text: str) -> str:
    """The table of a schema-change topic's ``id``: Debezium writes ``"db"."table"``
    (double-quoted parts, as :func:`~runtime.schema.split_table_id` reads them); bare or
    backquoted parts are taken apart at their dots."""
    if '"' in text:
        return table_id(*split_table_id(text))
    parts = [p.strip("`") for p in text.split(".") if p]
    return table_id(parts[0], ".".join(parts[1:])) if len(parts) > 1 else text


def _table_id(source: dict, topic: str) -> str:
    db, table = source.get("db"), source.get("table")
    if db and table:
        return table_id(db, table)
    parts = topic.split(".")
    return ".".join(parts[-2:]) if len(parts) >= 2 else topic


class DebeziumJsonFormat(MessageFormat):
    """Debezium's JSON envelope (see the module docstring)."""

    name: ClassVar[str] = "debezium-json"
    config_class: ClassVar = DebeziumJsonConfig
    has_key_form: ClassVar[bool] = True

    def decoder(self) -> MessageDecoder:
        return DebeziumJsonDecoder(self.config)

    def encoder(self) -> MessageEncoder:
        return DebeziumJsonEncoder(self.config.schema_include, self.config.modes,
                                  self.config.source_name)
