"""``format = "json"``: one JSON object per message, the row plus its ``op`` and ``ts_ms``.

The flat changelog form the files sink writes (Debezium's ExtractNewRecordState with the op
kept): the row after the change (before it, for a delete) with values encoded as in
:mod:`formats.textcodec`, then ``"op"`` and ``"ts_ms"``.  Reading, ``op`` and ``ts_ms`` are
taken when present (an object without ``op`` is an insert; without ``ts_ms`` its event time is
the message timestamp), so plain JSON events of any producer read as inserts.
"""
from __future__ import annotations

from typing import Any, ClassVar

import pyarrow as pa
import pyarrow.compute as pc
from pydantic import Field

from formats.envelope import EnvelopeDecoder, Event
from formats.message import MessageDecoder, MessageEncoder, MessageFormat, MessageFormatConfig
from formats.msgvalues import object_texts, ops_of, split_utf8
from runtime.batch import OPS, ChangeBatch
from runtime.schema import SchemaChange


class JsonMessageConfig(MessageFormatConfig):
    summary: ClassVar[str] = "a JSON object per message: the row, its op and ts_ms"

    changelog: bool = Field(True, description=(
        "write the \"op\" and \"ts_ms\" fields after the row's columns (false: the row only)"))


class JsonDecoder(EnvelopeDecoder):
    name = "json"

    def parse(self, obj: Any, key: bytes | None, ts_ms: int, topic: str, value: bytes
              ) -> list[Event | SchemaChange]:
        if not isinstance(obj, dict):
            raise ValueError("the message is not a JSON object")
        op = "c"
        declared = self.config.columns
        if "op" in obj and (declared is None or "op" not in declared):
            op = obj.pop("op")
            if op not in OPS:
                raise ValueError(f"op {op!r} is not one of {', '.join(OPS)}")
        if "ts_ms" in obj and (declared is None or "ts_ms" not in declared):
            ts = obj.pop("ts_ms")
            ts_ms = int(ts) if ts is not None else ts_ms
        return [Event(self.default_table(topic), op, obj, None, ts_ms)]


class JsonEncoder(MessageEncoder):
    def __init__(self, changelog: bool = True):
        self.changelog = changelog

    def encode(self, batch: ChangeBatch, topic: str) -> list[bytes | None]:
        extra: list[tuple[str, pa.Array]] = []
        if self.changelog:
            ops = pc.binary_join_element_wise('"', ops_of(batch.ops), '"', "")
            extra = [("op", ops), ("ts_ms", batch.ts_ms_array().cast(pa.int64()).cast(pa.string()))]
        return split_utf8(object_texts(batch.arrow(), batch.schema, extra=extra))  # type: ignore[return-value]

    def encode_keys(self, batch: ChangeBatch, topic: str) -> list[bytes | None]:
        schema = batch.schema
        if not schema.primary_key:
            return [None] * len(batch)
        rb = batch.arrow().select(list(schema.primary_key))
        key_schema = schema.with_columns(tuple(schema.column(k) for k in schema.primary_key))
        return split_utf8(object_texts(rb, key_schema))  # type: ignore[return-value]


class JsonMessageFormat(MessageFormat):
    """JSON objects, one per message (see the module docstring)."""

    name: ClassVar[str] = "json"
    config_class: ClassVar = JsonMessageConfig

    def decoder(self) -> MessageDecoder:
        return JsonDecoder(self.config)

    def encoder(self) -> MessageEncoder:
        return JsonEncoder(self.config.changelog)
