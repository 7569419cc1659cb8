"""``format = "maxwell-json"``: Maxwell's daemon messages.

Reading: ``{"database", "table", "type", "ts", "data", "old", "primary_key"?}``; ``insert`` is
``c``, ``bootstrap-insert`` ``r``, ``update`` ``u`` (before image: ``data`` with ``old`` put
back), ``delete`` ``d``.  Maxwell carries no column types: they are the declared ``columns``,
or inferred from the values (and widened when new fields appear).  ``ts`` is in seconds.
``table-drop`` becomes a drop-table schema change; other DDL and bootstrap markers carry no
row change.  Writing: Maxwell's shape and value forms (:class:`MaxwellJsonEncoder`).
"""
from __future__ import annotations

import dataclasses
import json
from typing import Any, ClassVar

import pyarrow as pa
import pyarrow.compute as pc

from formats.base import MessageDecoder, MessageEncoder
from formats.message.base import MessageFormat, MessageFormatConfig
from formats.message.envelope import EnvelopeDecoder, Event
from formats.message.mysql_values import before_batch, changed_texts, mysql_columns
from formats.message.values import object_texts, ops_of, split_utf8
from runtime.batch import ChangeBatch
from runtime.schema import SchemaChange, TableSchema, split_table_id, table_id

_TYPES = {"insert": "c", "bootstrap-insert": "r", "update": "u", "delete": "d"}
_NO_ROWS = ("bootstrap-start", "bootstrap-complete", "table-create", "table-alter",
            "database-create", "database-alter", "database-drop")


class MaxwellJsonConfig(MessageFormatConfig):
    summary: ClassVar[str] = "Maxwell messages (database/table/type/ts/data/old)"


class MaxwellJsonDecoder(EnvelopeDecoder):
    name = "maxwell-json"

    def parse(self, obj: Any, key: bytes | None, ts_ms: int, topic: str, value: bytes
              ) -> list[Event | SchemaChange]:
        kind = obj["type"]
        table = self.config.table or table_id(obj['database'], obj['table'])
        ts = int(obj["ts"]) * 1000 if obj.get("ts") is not None else ts_ms
        if kind == "table-drop":
            return [SchemaChange("drop_table", table, None, {}, ts)]
        if kind in _NO_ROWS:
            return []
        op = _TYPES.get(kind)
        if op is None:
            raise ValueError(f"unknown type {kind!r}")
        row = obj["data"]
        if not isinstance(row, dict):
            raise ValueError("'data' is not an object")
        before = {**row, **obj["old"]} if op == "u" and obj.get("old") else None
        return [Event(table, op, row, before, ts)]


class MaxwellJsonEncoder(MessageEncoder):
    """Maxwell's messages as its data-format page shows them: ``database``, ``table``,
    ``type``, ``ts`` (seconds), ``data`` (the row; a delete's row before it went) and, for
    an update, ``old`` with the changed columns only.  Values as Maxwell writes them:
    DATETIME/TIMESTAMP as MySQL's ``YYYY-MM-DD hh:mm:ss`` with the column's digits
    (TIMESTAMP in UTC), DECIMAL as JSON numbers, SET as arrays, binary values base64.
    ``xid``, ``commit``, ``position``, ``server_id`` and ``thread_id`` (the binlog's) are not
    written.  Keys are Maxwell's: ``{"database", "table", "pk.<column>": value...}``."""

    def __init__(self) -> None:
        self._key_heads: dict[TableSchema, tuple[str, TableSchema]] = {}

    def encode(self, batch: ChangeBatch, topic: str) -> list[bytes | None]:
        return split_utf8(self.encode_arrow(batch, topic))  # type: ignore[return-value]

    def encode_arrow(self, batch: ChangeBatch, topic: str) -> pa.Array:
        schema: TableSchema = batch.schema
        db, table = split_table_id(schema.table)
        after, text_schema, raw = mysql_columns(batch.arrow(), schema, decimals_raw=True)
        rows = object_texts(after, text_schema, raw=raw)
        ops = ops_of(batch.ops)
        kind = pc.if_else(pc.equal(ops, "d"), "delete", pc.if_else(
            pc.equal(ops, "u"), "update", pc.if_else(pc.equal(ops, "r"), "bootstrap-insert",
                                                     "insert")))
        before_rb = before_batch(batch)
        before = None if before_rb is None else mysql_columns(before_rb, schema,
                                                              decimals_raw=True)[0]
        old = changed_texts(batch, after, before, text_schema, raw)
        old = pc.if_else(pc.equal(old, "null"), "", pc.binary_join_element_wise(
            ',"old":', old, ""))
        secs = pc.divide(batch.ts_ms_array().cast(pa.int64()), 1000).cast(pa.string())
        head = '{"database":' + json.dumps(db) + ',"table":' + json.dumps(table) + ',"type":"'
        return pc.binary_join_element_wise(head, kind, '","ts":', secs, ',"data":', rows, old,
                                           "}", "")

    def encode_keys(self, batch: ChangeBatch, topic: str) -> list[bytes | None]:
        keys = self.encode_keys_arrow(batch, topic)
        return [None] * len(batch) if keys is None else split_utf8(keys)  # type: ignore

    def encode_keys_arrow(self, batch: ChangeBatch, topic: str) -> pa.Array | None:
        s = batch.schema
        if not s.primary_key:
            return None
        hit = self._key_heads.get(s)
        if hit is None:
            db, table = split_table_id(s.table)
            ks = TableSchema(s.table, tuple(dataclasses.replace(s.column(k), name=f"pk.{k}")
                                            for k in s.primary_key))
            head = '{"database":' + json.dumps(db) + ',"table":' + json.dumps(table) + ","
            hit = self._key_heads[s] = (head, ks)
        head, ks = hit
        rb = batch.arrow()
        key_rb = pa.RecordBatch.from_arrays([rb.column(i) for i in s.key_indexes],
                                            schema=ks.arrow_schema)
        key_rb, text_schema, raw = mysql_columns(key_rb, ks, decimals_raw=True)
        texts = object_texts(key_rb, text_schema, raw=raw)
        return pc.binary_join_element_wise(head, pc.utf8_slice_codeunits(texts, 1), "")


class MaxwellJsonFormat(MessageFormat):
    """Maxwell's JSON messages (see the module docstring)."""

    name: ClassVar[str] = "maxwell-json"
    config_class: ClassVar = MaxwellJsonConfig
    has_key_form: ClassVar[bool] = True

    def decoder(self) -> MessageDecoder:
        return MaxwellJsonDecoder(self.config)

    def encoder(self) -> MessageEncoder:
        return MaxwellJsonEncoder()
