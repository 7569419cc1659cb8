"""Writing ``format = "debezium-json"``: what Debezium's MySQL connector writes with its default
settings, so that any Debezium consumer reads it unchanged.

The value of each event is the envelope ``{"before", "after", "source", "transaction", "op",
"ts_ms", "ts_us", "ts_ns"}`` (a delete: ``after`` null, ``before`` the deleted row; no
tombstone follows), values in Debezium's encodings
(:mod:`formats.codec.debezium_encoding`), and with ``schema-include = true`` the schema part
of Kafka Connect's JsonConverter with ``schemas.enable`` (struct names
``<source-name>.<db>.<table>.Value`` / ``.Key`` / ``.Envelope``, the source block
``io.debezium.connector.mysql.Source``).  The key is the primary key columns in the same
encodings, with its own schema part under ``schema-include``.

``source`` carries Debezium's MySQL fields: ``version`` (the hub's: these messages are not
Debezium's), ``connector`` "mysql", ``name`` (option ``source-name``), ``ts_ms`` (the event's
commit time), ``snapshot`` ("true" for snapshot reads, else "false"), ``db``, ``table``,
``server_id``, ``gtid``, ``file``, ``pos``, ``row``: the binlog coordinates of batches that
carry them (``ChangeBatch.positions`` as the MySQL source fills it, a struct array with those
fields: :mod:`sources.mysql.positions`); for other batches ``server_id``/``pos``/``row`` are 0,
``file`` "" and ``gtid`` null.  The envelope's ``ts_ms``
is the event time too, not the time of writing (Debezium's processing time): a replay after a
crash writes the same bytes.  ``ts_us``/``ts_ns`` are ``ts_ms`` in micro/nanoseconds.
"""
from __future__ import annotations

import json
from importlib.metadata import PackageNotFoundError, version
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from formats.base import MessageEncoder
from formats.codec.debezium_encoding import debezium_struct, encoded_batch
from formats.codec.debezium_types import Modes
from formats.message.values import before_texts, object_texts, ops_of, split_utf8
from runtime.batch import ChangeBatch
from runtime.schema import TableSchema, split_table_id

_COMPACT = (",", ":")


def _hub_version() -> str:
    try:
        return f"cdc-hub {version('cdc-hub')}"
    except PackageNotFoundError:
        return "cdc-hub"


_SOURCE_FIELDS: list[dict[str, Any]] = [
    {"type": "string", "optional": False, "field": "version"},
    {"type": "string", "optional": False, "field": "connector"},
    {"type": "string", "optional": False, "field": "name"},
    {"type": "int64", "optional": False, "field": "ts_ms"},
    {"type": "string", "optional": True, "name": "io.debezium.data.Enum", "version": 1,
     "parameters": {"allowed": "true,first,first_in_data_collection,last_in_data_collection,"
                               "last,false,incremental"},
     "default": "false", "field": "snapshot"},
    {"type": "string", "optional": False, "field": "db"},
    {"type": "string", "optional": True, "field": "sequence"},
    {"type": "int64", "optional": True, "field": "ts_us"},
    {"type": "int64", "optional": True, "field": "ts_ns"},
    {"type": "string", "optional": True, "field": "table"},
    {"type": "int64", "optional": False, "field": "server_id"},
    {"type": "string", "optional": True, "field": "gtid"},
    {"type": "string", "optional": False, "field": "file"},
    {"type": "int64", "optional": False, "field": "pos"},
    {"type": "int32", "optional": False, "field": "row"},
    {"type": "int64", "optional": True, "field": "thread"},
    {"type": "string", "optional": True, "field": "query"},
]
_TRANSACTION = {"type": "struct", "optional": True, "name": "event.block", "version": 1,
                "field": "transaction", "fields": [
                    {"type": "string", "optional": False, "field": "id"},
                    {"type": "int64", "optional": False, "field": "total_order"},
                    {"type": "int64", "optional": False, "field": "data_collection_order"}]}


_NO_COORDINATES = '"server_id":0,"gtid":null,"file":"","pos":0,"row":0'


def _json_text(arr: pa.Array) -> pa.Array:
    """A string array as JSON string literals (null stays null)."""
    escaped = pc.replace_substring(pc.replace_substring(arr, "\\", "\\\\"), '"', '\\"')
    return pc.binary_join_element_wise('"', escaped, '"', "")


def _coordinates(positions: Any) -> pa.Array | None:
    """``"server_id":..,"gtid":..,"file":..,"pos":..,"row":..`` per event from a batch's
    binlog positions (a struct array with those fields), None when it has none."""
    if not isinstance(positions, pa.StructArray) or positions.type.get_field_index("pos") < 0:
        return None
    f = positions.field
    return pc.binary_join_element_wise(
        '"server_id":', f("server_id").cast(pa.string()),
        ',"gtid":', pc.fill_null(_json_text(f("gtid")), "null"),
        ',"file":', _json_text(f("file")), ',"pos":', f("pos").cast(pa.string()),
        ',"row":', f("row").cast(pa.string()), "")


class DebeziumJsonEncoder(MessageEncoder):
    """Encodes batches as Debezium MySQL change events (see the module docstring)."""

    def __init__(self, schema_include: bool, modes: Modes | None = None,
                 source_name: str = "hub"):
        self.schema_include = schema_include
        self.modes = modes or Modes()
        self.source_name = source_name
        self._version = _hub_version()
        self._heads: dict[TableSchema, tuple[str, str, str]] = {}
        self._key_heads: dict[TableSchema, str] = {}

    def encode(self, batch: ChangeBatch, topic: str) -> list[bytes | None]:
        return split_utf8(self.encode_arrow(batch, topic))  # type: ignore[return-value]

    def encode_arrow(self, batch: ChangeBatch, topic: str) -> pa.Array:
        schema = batch.schema
        rows = self._objects(batch.arrow(), schema)
        ops = ops_of(batch.ops)
        is_delete = pc.equal(ops, "d")
        null = pa.scalar("null")
        before = pc.if_else(is_delete, rows, self._before(batch))
        after = pc.if_else(is_delete, null, rows)
        ts = batch.ts_ms_array().cast(pa.int64())
        ms, us, ns = (pc.multiply(ts, f).cast(pa.string()) for f in (1, 1000, 1_000_000))
        snapshot = pc.if_else(pc.equal(ops, "r"), "true", "false")
        head, source_mid, tail = self._wrap(schema)
        coords = _coordinates(batch.positions)
        if coords is not None:
            pre, post = source_mid[2].split(_NO_COORDINATES)
            source_mid = (source_mid[0], source_mid[1],
                          pc.binary_join_element_wise(pre, coords, post, ""))
        return pc.binary_join_element_wise(
            head + '{"before":', before, ',"after":', after, source_mid[0], ms,
            ',"snapshot":"', snapshot, source_mid[1], us, ',"ts_ns":', ns, source_mid[2],
            ops, '","ts_ms":', ms, ',"ts_us":', us, ',"ts_ns":', ns, "}" + tail, "")

    def _objects(self, rb: pa.RecordBatch, schema: TableSchema) -> pa.Array:
        encoded, enc_schema, structs = encoded_batch(rb, schema, self.modes)
        return object_texts(encoded, enc_schema, json_as_string=True, raw=structs)

    def _before(self, batch: ChangeBatch) -> pa.Array:
        """Before images of updates (``null`` where there is none)."""
        return before_texts(batch, encode=self._objects)

    def _wrap(self, schema: TableSchema) -> tuple[str, tuple[str, str, str], str]:
        """The constant texts around the per-event parts: the schema part's head, the source
        block's pieces (before ts_ms, between snapshot and ts_us, after ts_ns up to the op's
        quote), the closing."""
        hit = self._heads.get(schema)
        if hit is None:
            db, table = split_table_id(schema.table)
            src = json.dumps({"version": self._version, "connector": "mysql",
                              "name": self.source_name}, separators=_COMPACT)[:-1]
            tbl = json.dumps({"db": db, "sequence": None}, separators=_COMPACT)[1:-1]
            rest = json.dumps({"table": table, "server_id": 0, "gtid": None, "file": "",
                               "pos": 0, "row": 0, "thread": None, "query": None},
                              separators=_COMPACT)[1:]
            mid = (',"source":' + src + ',"ts_ms":', '",' + tbl + ',"ts_us":',
                   "," + rest + ',"transaction":null,"op":"')
            head, tail = "", ""
            if self.schema_include:
                head = '{"schema":' + json.dumps(self._schema_part(schema),
                                                 separators=_COMPACT) + ',"payload":'
                tail = "}"
            hit = self._heads[schema] = (head, mid, tail)  # type: ignore[assignment]
        return hit  # type: ignore[return-value]

    def _prefix(self, schema: TableSchema) -> str:
        db, table = split_table_id(schema.table)
        return ".".join(p for p in (self.source_name, db, table) if p)

    def _schema_part(self, schema: TableSchema) -> dict[str, Any]:
        prefix = self._prefix(schema)
        value = debezium_struct(schema, f"{prefix}.Value", self.modes)
        return {"type": "struct", "optional": False, "name": f"{prefix}.Envelope",
                "version": 2, "fields": [
                    {**value, "field": "before"}, {**value, "field": "after"},
                    {"type": "struct", "optional": False,
                     "name": "io.debezium.connector.mysql.Source", "field": "source",
                     "fields": _SOURCE_FIELDS},
                    _TRANSACTION,
                    {"type": "string", "optional": False, "field": "op"},
                    {"type": "int64", "optional": True, "field": "ts_ms"},
                    {"type": "int64", "optional": True, "field": "ts_us"},
                    {"type": "int64", "optional": True, "field": "ts_ns"}]}

    # -- keys ---------------------------------------------------------------------------------
    def encode_keys(self, batch: ChangeBatch, topic: str) -> list[bytes | None]:
        keys = self.encode_keys_arrow(batch, topic)
        return [None] * len(batch) if keys is None else split_utf8(keys)  # type: ignore

    def encode_keys_arrow(self, batch: ChangeBatch, topic: str) -> pa.Array | None:
        s = batch.schema
        if not s.primary_key:
            return None
        ks = s.with_columns(tuple(s.column(k) for k in s.primary_key))
        rb = batch.arrow()
        key_rb = pa.RecordBatch.from_arrays([rb.column(i) for i in s.key_indexes],
                                            schema=ks.arrow_schema)
        keys = self._objects(key_rb, ks)
        if not self.schema_include:
            return keys
        head = self._key_heads.get(s)
        if head is None:
            struct = debezium_struct(ks, f"{self._prefix(s)}.Key", self.modes, optional=False)
            head = self._key_heads[s] = (
                '{"schema":' + json.dumps(struct, separators=_COMPACT) + ',"payload":')
        return pc.binary_join_element_wise(head, keys, "}", "")
