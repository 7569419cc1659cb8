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

import json
import logging
from typing import Any, ClassVar

import pyarrow as pa
import pyarrow.compute as pc

from formats.base import MessageDecoder, MessageEncoder
from formats.message.base import MessageFormat, MessageFormatConfig, event_time
from formats.message.envelope import EnvelopeDecoder, Event
from formats.message.json import JsonEncoder
from formats.message.values import before_texts, object_texts, ops_of, split_utf8
from formats.mysqltypes import from_mysql, to_mysql
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
            cols = tuple(Column(n, from_mysql(t), n not in pk) for n, t in types.items())
            kinds = {n: t.split("(")[0].strip().lower() for n, t in types.items()}
            special = {n: k for n, k in kinds.items()
                       if k in ("set", "bit", "binary", "varbinary", "tinyblob", "blob",
                                "mediumblob", "longblob")}
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
        else:
            import base64

            row[name] = base64.b64encode(v.encode("latin-1")).decode("ascii")


class CanalJsonEncoder(MessageEncoder):
    def __init__(self) -> None:
        self._keys = JsonEncoder(changelog=False)
        self._heads: dict[TableSchema, str] = {}

    def encode(self, batch: ChangeBatch, topic: str) -> list[bytes | None]:
        return split_utf8(self.encode_arrow(batch, topic))  # type: ignore[return-value]

    def encode_arrow(self, batch: ChangeBatch, topic: str) -> pa.Array:
        schema = batch.schema
        rb, text_schema = _latin1_binaries(batch.arrow(), schema)
        rows = object_texts(rb, text_schema)
        ops = ops_of(batch.ops)
        kind = pc.if_else(pc.equal(ops, "d"), "DELETE",
                          pc.if_else(pc.equal(ops, "u"), "UPDATE", "INSERT"))
        if text_schema is not schema and batch.before is not None:
            images = [b if b is not None else (None,) * len(schema.columns) for b in batch.before]
            brb, _ = _latin1_binaries(ChangeBatch(schema, batch.ops, rows=images).arrow(), schema)
            mask = pa.array([b is not None for b in batch.before])
            before = pc.if_else(mask, object_texts(brb, text_schema), pa.scalar("null"))
        else:
            before = before_texts(batch)
        old = pc.if_else(pc.equal(before, "null"), "null",
                         pc.binary_join_element_wise("[", before, "]", ""))
        ts = batch.ts_ms_array().cast(pa.int64()).cast(pa.string())
        out = pc.binary_join_element_wise(
            '{"data":[', rows, '],' + self._head(schema) + ',"type":"', kind, '","es":', ts,
            ',"ts":', ts, ',"old":', old, "}", "")
        return out

    def _head(self, schema: TableSchema) -> str:
        hit = self._heads.get(schema)
        if hit is None:
            db, table = split_table_id(schema.table)
            hit = json.dumps({"database": db, "table": table, "pkNames": list(schema.primary_key),
                              "isDdl": False, "sql": "",
                              "mysqlType": {c.name: to_mysql(c.type) for c in schema.columns}},
                             separators=(",", ":"))[1:-1]
            self._heads[schema] = hit
        return hit

    def encode_keys(self, batch: ChangeBatch, topic: str) -> list[bytes | None]:
        return self._keys.encode_keys(batch, topic)

    def encode_keys_arrow(self, batch: ChangeBatch, topic: str) -> pa.Array | None:
        return self._keys.encode_keys_arrow(batch, topic)


def _latin1_binaries(rb: pa.RecordBatch, schema: TableSchema
                     ) -> tuple[pa.RecordBatch, TableSchema]:
    """Binary columns as ISO-8859-1 text, as Canal writes them (per value: no Arrow kernel)."""
    binary = [i for i, c in enumerate(schema.columns) if c.type.is_binary]
    if not binary:
        return rb, schema
    cols = list(rb.columns)
    columns = list(schema.columns)
    for i in binary:
        cols[i] = pa.array([None if v is None else v.decode("latin-1")
                            for v in cols[i].to_pylist()], pa.string())
        columns[i] = Column(columns[i].name, T("STRING"), columns[i].nullable)
    text_schema = schema.with_columns(tuple(columns))
    return pa.RecordBatch.from_arrays(cols, schema=text_schema.arrow_schema), text_schema


class CanalJsonFormat(MessageFormat):
    """Canal's flat JSON messages (see the module docstring)."""

    name: ClassVar[str] = "canal-json"
    config_class: ClassVar = CanalJsonConfig

    def decoder(self) -> MessageDecoder:
        return CanalJsonDecoder(self.config)

    def encoder(self) -> MessageEncoder:
        return CanalJsonEncoder()
