"""``format = "maxwell-json"``: Maxwell's daemon messages.

Reading: ``{"database", "table", "type", "ts", "data", "old", "primary_key"?}``; ``insert`` is
``c``, ``bootstrap-insert`` ``r``, ``update`` ``u`` (before image: ``data`` with ``old`` put
back), ``delete`` ``d``.  Maxwell carries no column types: they are the declared ``columns``,
or inferred from the values (and widened when new fields appear).  ``ts`` is in seconds.
``table-drop`` becomes a drop-table schema change; other DDL and bootstrap markers carry no
row change.  Writing: the same shape, values in :mod:`formats.codec.text` encodings.
"""
from __future__ import annotations

import json
from typing import Any, ClassVar

import pyarrow as pa
import pyarrow.compute as pc

from formats.base import MessageDecoder, MessageEncoder
from formats.message.base import MessageFormat, MessageFormatConfig
from formats.message.envelope import EnvelopeDecoder, Event
from formats.message.json import JsonEncoder
from formats.message.values import before_texts, object_texts, ops_of, split_utf8
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
    def __init__(self) -> None:
        self._keys = JsonEncoder(changelog=False)

    def encode(self, batch: ChangeBatch, topic: str) -> list[bytes | None]:
        return split_utf8(self.encode_arrow(batch, topic))  # type: ignore[return-value]

    def encode_arrow(self, batch: ChangeBatch, topic: str) -> pa.Array:
        schema: TableSchema = batch.schema
        db, table = split_table_id(schema.table)
        rows = object_texts(batch.arrow(), schema)
        ops = ops_of(batch.ops)
        kind = pc.if_else(pc.equal(ops, "d"), "delete", pc.if_else(
            pc.equal(ops, "u"), "update", pc.if_else(pc.equal(ops, "r"), "bootstrap-insert",
                                                     "insert")))
        before = before_texts(batch)
        old = pc.if_else(pc.equal(before, "null"), "", pc.binary_join_element_wise(
            ',"old":', before, ""))
        secs = pc.divide(batch.ts_ms_array().cast(pa.int64()), 1000).cast(pa.string())
        head = '{"database":' + json.dumps(db) + ',"table":' + json.dumps(table) + ',"type":"'
        out = pc.binary_join_element_wise(head, kind, '","ts":', secs, ',"data":', rows, old,
                                          "}", "")
        return out

    def encode_keys(self, batch: ChangeBatch, topic: str) -> list[bytes | None]:
        return self._keys.encode_keys(batch, topic)

    def encode_keys_arrow(self, batch: ChangeBatch, topic: str) -> pa.Array | None:
        return self._keys.encode_keys_arrow(batch, topic)


class MaxwellJsonFormat(MessageFormat):
    """Maxwell's JSON messages (see the module docstring)."""

    name: ClassVar[str] = "maxwell-json"
    config_class: ClassVar = MaxwellJsonConfig
    has_key_form: ClassVar[bool] = True

    def decoder(self) -> MessageDecoder:
        return MaxwellJsonDecoder(self.config)

    def encoder(self) -> MessageEncoder:
        return MaxwellJsonEncoder()
