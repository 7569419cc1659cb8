"""``format = "canal-json"``: Alibaba Canal's flat messages.

Reading: ``{"data": [rows], "old": [changed values], "database", "table", "pkNames", "type",
"isDdl", "mysqlType", "es", "ts"}``.  One message may hold several rows (all of one table and
type).  Columns and types come from ``mysqlType`` (MySQL type texts, :mod:`formats.mysqltypes`)
and the key from ``pkNames``, unless ``columns`` are declared; values may be strings (as Canal
writes them) or JSON values.  ``INSERT`` is ``c``, ``UPDATE`` ``u`` (the before image is the row
with ``old``'s values put back), ``DELETE`` ``d``.  DDL messages: ``TRUNCATE`` and ``ERASE``
(drop table) become schema changes; ``CREATE``/``ALTER`` carry no column list, so the schema
change is emitted at the next row message, whose ``mysqlType`` shows the new columns.  Event
time is ``es`` (the binlog time).

Writing: one row per message, values as JSON values (:mod:`formats.codec.text`), ``mysqlType``
from the logical types (:func:`formats.mysqltypes.to_mysql`).
"""
from __future__ import annotations

import base64
import json
import logging
from typing import Any, ClassVar

import pyarrow as pa
import pyarrow.compute as pc

from formats.base import MessageDecoder, MessageEncoder
from formats.message.base import MessageFormat, MessageFormatConfig, event_time
from formats.message.envelope import EnvelopeDecoder, Event
from formats.message.json import JsonEncoder
from formats.message.mysql_values import before_batch, canal_strings, changed_texts
from formats.message.values import object_texts, ops_of, split_utf8
from formats.mysqltypes import GEOMETRY_TYPES, from_mysql, source_type_of, to_mysql
from runtime.batch import ChangeBatch
from runtime.schema import Column, SchemaChange, TableSchema, split_table_id, table_id
from runtime.types import T

log = logging.getLogger(__name__)

_TYPES = {"INSERT": "c", "UPDATE": "u", "DELETE": "d"}


class CanalJsonConfig(MessageFormatConfig):
    summary: ClassVar[str] = "Canal flat messages (data/old/type/mysqlType/pkNames)"


class CanalJsonDecoder(EnvelopeDecoder):
    name = "canal-json"

    def __init__(self, config: CanalJsonConfig):
        super().__init__(config)
        self._types: dict[tuple, tuple[TableSchema, dict[str, str]]] = {}

    def parse(self, obj: Any, key: bytes | None, ts_ms: int, topic: str, value: bytes
              ) -> list[Event | SchemaChange]:
        table = self.config.table or table_id(obj['database'], obj['table'])
        ts = event_time(obj.get("es"), obj.get("ts"), ts_ms)
        kind = str(obj.get("type", "")).upper()
        if obj.get("isDdl"):
            if kind == "TRUNCATE":
                return [SchemaChange("truncate_table", table, self.schemas.get(table), {}, ts)]
            if kind == "ERASE":
                return [SchemaChange("drop_table", table, None, {}, ts)]
            log.debug("canal-json: DDL %s of %s: its columns show in the next row message",
                      kind, table)
            return []
        op = _TYPES.get(kind)
        if op is None:
            raise ValueError(f"unknown type {obj.get('type')!r}")
        schema, sets = self._schema(table, obj)
        rows = obj.get("data") or []
        olds = obj.get("old") or []
        out: list[Event | SchemaChange] = []
        for j, row in enumerate(rows):
            _fix(row, sets)
            before = None
            if op == "u" and j < len(olds) and olds[j]:
                old = dict(olds[j])
                _fix(old, sets)
                before = {**row, **old}
            out.append(Event(table, op, row, before, ts, schema))
        return out

    def _schema(self, table: str, obj: dict) -> tuple[TableSchema | None, dict[str, str]]:
        types = obj.get("mysqlType")
        if not types or self.config.columns is not None:
            return None, {}
        pk = tuple(self.config.primary_key or obj.get("pkNames") or ())
        cache_key = (table, tuple(types.items()), pk)
        hit = self._types.get(cache_key)
        if hit is None:
            cols = tuple(Column(n, from_mysql(t), n not in pk, source_type=source_type_of(t))
                         for n, t in types.items())
            kinds = {n: t.split("(")[0].strip().lower() for n, t in types.items()}
            special = {n: k for n, k in kinds.items()
                       if k in ("set", "bit", "binary", "varbinary", "tinyblob", "blob",
                                "mediumblob", "longblob") or k in GEOMETRY_TYPES}
            for c in cols:  # BIT(n): Canal writes the unsigned integer of the bits
                if special.get(c.name) == "bit" and c.type.is_binary:
                    special[c.name] = f"bits:{(int(c.source_type[4:-1]) + 7) // 8}"
            hit = (TableSchema(table, cols, tuple(k for k in pk if k in types)), special)
            self._types[cache_key] = hit
        return hit


def _fix(row: dict[str, Any], special: dict[str, str]) -> None:
    """Canal's string forms of SET (``a,b``), BIT(1) (``1``) and binary values (ISO-8859-1
    text) as our values."""
    for name, kind in special.items():
        v = row.get(name)
        if not isinstance(v, str):
            continue
        if kind == "set":
            row[name] = v.split(",") if v else []
        elif kind == "bit":
            row[name] = v not in ("0", "", "false")
        elif kind.startswith("bits:"):
            try:
                raw = int(v).to_bytes(int(kind[5:]), "big")
            except (ValueError, OverflowError):
                raise ValueError(f"column {name!r}: {v[:40]!r} is not the integer of a "
                                 f"BIT({int(kind[5:]) * 8})") from None
            row[name] = base64.b64encode(raw).decode("ascii")
        else:
            row[name] = base64.b64encode(v.encode("latin-1")).decode("ascii")


#: java.sql.Types codes Canal gives a column (``LogEventConvert``: binary values are BLOB,
#: text CLOB, ENUM INTEGER, SET BINARY, YEAR VARCHAR, BIT BIT) by its logical type
_SQL_TYPES = {"BOOLEAN": -7, "TINYINT": -6, "SMALLINT": 5, "INT": 4, "BIGINT": -5,
              "DECIMAL": 3, "FLOAT": 7, "DOUBLE": 8, "CHAR": 1, "VARCHAR": 12, "STRING": 2005,
              "BINARY": 2004, "VARBINARY": 2004, "BYTES": 2004, "DATE": 91, "TIME": 92,
              "TIMESTAMP": 93, "TIMESTAMP_LTZ": 93, "JSON": 12, "ARRAY": -2}


def _sql_type(c: Column) -> int:
    st = c.source_type or ""
    if st.startswith("enum("):
        return 4
    if st.startswith("bit("):
        return -7
    if st == "year":
        return 12
    return _SQL_TYPES[c.type.kind]


class CanalJsonEncoder(MessageEncoder):
    """Canal's FlatMessage, one row per message, as Canal's Kafka producer writes it
    (fastjson: keys in alphabetical order, nulls written): values as Canal's strings
    (:func:`~formats.message.mysql_values.canal_strings`), ``old`` with the changed columns
    only, ``mysqlType`` the column's MySQL type (its source type, else one that maps back
    to its logical type), ``sqlType`` Canal's java.sql.Types codes.  ``id`` (Canal's batch
    id) is 0 and ``ts`` the event time (Canal's: when Canal read the binlog), so that a
    replay writes the same bytes."""

    def __init__(self) -> None:
        self._keys = JsonEncoder(changelog=False)
        self._heads: dict[TableSchema, tuple[str, str]] = {}

    def encode(self, batch: ChangeBatch, topic: str) -> list[bytes | None]:
        return split_utf8(self.encode_arrow(batch, topic))  # type: ignore[return-value]

    def encode_arrow(self, batch: ChangeBatch, topic: str) -> pa.Array:
        schema = batch.schema
        after, text_schema = canal_strings(batch.arrow(), schema)
        rows = object_texts(after, text_schema)
        ops = ops_of(batch.ops)
        kind = pc.if_else(pc.equal(ops, "d"), "DELETE",
                          pc.if_else(pc.equal(ops, "u"), "UPDATE", "INSERT"))
        before_rb = before_batch(batch)
        before = None if before_rb is None else canal_strings(before_rb, schema)[0]
        old = changed_texts(batch, after, before, text_schema)
        old = pc.if_else(pc.equal(old, "null"), "null",
                         pc.binary_join_element_wise("[", old, "]", ""))
        ts = batch.ts_ms_array().cast(pa.int64()).cast(pa.string())
        mid, tail = self._head(schema)
        return pc.binary_join_element_wise(
            '{"data":[', rows, mid[0], ts, mid[1], old, mid[2], ts, ',"type":"', kind,
            tail, "")

    def _head(self, schema: TableSchema) -> tuple[tuple[str, str, str], str]:
        hit = self._heads.get(schema)
        if hit is None:
            db, table = split_table_id(schema.table)

            def dumps(v: Any) -> str:
                return json.dumps(v, separators=(",", ":"), ensure_ascii=False)

            mysql = {c.name: c.source_type or to_mysql(c.type) for c in schema.columns}
            sql = {c.name: _sql_type(c) for c in schema.columns}
            pk = list(schema.primary_key) or None
            mid = ('],"database":' + dumps(db) + ',"es":',
                   ',"id":0,"isDdl":false,"mysqlType":' + dumps(mysql) + ',"old":',
                   ',"pkNames":' + dumps(pk) + ',"sql":"","sqlType":' + dumps(sql)
                   + ',"table":' + dumps(table) + ',"ts":')
            hit = self._heads[schema] = (mid, '"}')  # type: ignore[assignment]
        return hit  # type: ignore[return-value]

    def encode_keys(self, batch: ChangeBatch, topic: str) -> list[bytes | None]:
        return self._keys.encode_keys(batch, topic)

    def encode_keys_arrow(self, batch: ChangeBatch, topic: str) -> pa.Array | None:
        return self._keys.encode_keys_arrow(batch, topic)


class CanalJsonFormat(MessageFormat):
    """Canal's flat JSON messages (see the module docstring)."""

    name: ClassVar[str] = "canal-json"
    config_class: ClassVar = CanalJsonConfig

    def decoder(self) -> MessageDecoder:
        return CanalJsonDecoder(self.config)

    def encoder(self) -> MessageEncoder:
        return CanalJsonEncoder()
