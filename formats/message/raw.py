"""``format = "raw"``: the message value as it is, one column.

Reading: every message with a value is an insert into a table with one column ``value``
(BYTES, or STRING with ``value-type = "STRING"``, decoded as UTF-8) and event time = the
message timestamp.  Writing: a batch whose table has exactly one STRING or BYTES column (or
one such column besides its key) writes that column's values; deletes write no value (a
tombstone).
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar, Literal

import pyarrow as pa
from pydantic import Field

from formats.base import Decoded, MessageDecoder, MessageEncoder
from formats.message.base import MessageFormat, MessageFormatConfig
from runtime.batch import ChangeBatch
from runtime.errors import BadRecordError
from runtime.schema import Column, TableSchema
from runtime.types import T


class RawConfig(MessageFormatConfig):
    summary: ClassVar[str] = "the message value as it is: one BYTES or STRING column"

    value_type: Literal["BYTES", "STRING"] = Field("BYTES", description=(
        "type of the value column when reading (STRING decodes UTF-8)"))


class RawDecoder(MessageDecoder):
    def __init__(self, config: RawConfig):
        self.config = config
        self._schemas: dict[str, TableSchema] = {}

    def decode(self, keys: Sequence[bytes | None], values: Sequence[bytes | None],
               timestamps: Sequence[int], topic: str) -> Decoded:
        table = self.config.table or topic
        schema = self._schemas.get(table)
        if schema is None:
            schema = TableSchema(table, (Column("value", T(self.config.value_type)),))
            self._schemas[table] = schema
        idx = [i for i, v in enumerate(values) if v is not None]
        out = Decoded()
        if not idx:
            return out
        vals = [values[i] for i in idx]
        if self.config.value_type == "STRING":
            good, arr = [], []
            for i, v in zip(idx, vals):
                try:
                    arr.append(v.decode("utf-8"))  # type: ignore[union-attr]
                    good.append(i)
                except UnicodeDecodeError as exc:
                    out.bad.append((i, f"not UTF-8 text: {exc}"))
            idx, column = good, pa.array(arr, pa.string())
        else:
            column = pa.array(vals, pa.binary())
        if idx:
            rb = pa.RecordBatch.from_arrays([column], schema=schema.arrow_schema)
            out.elements.append(ChangeBatch(schema, "c" * len(idx), arrow=rb,
                                            ts_ms=[timestamps[i] for i in idx]))
            out.indexes.append(idx)
        return out


class RawEncoder(MessageEncoder):
    def encode(self, batch: ChangeBatch, topic: str) -> list[bytes | None]:
        schema = batch.schema
        cols = [i for i, c in enumerate(schema.columns)
                if (c.type.is_string or c.type.is_binary) and c.name not in schema.primary_key]
        if len(cols) != 1:
            raise BadRecordError(f"raw format: table {schema.table} must have exactly one "
                                 f"STRING or BYTES column besides its key, has "
                                 f"{[c.name for c in schema.columns]}")
        col = batch.arrow().column(cols[0])
        vals = col.to_pylist()
        if schema.columns[cols[0]].type.is_string:
            vals = [None if v is None else v.encode("utf-8") for v in vals]
        return [None if op == "d" else v for op, v in zip(batch.ops, vals)]


class RawFormat(MessageFormat):
    """Message values as they are (see the module docstring)."""

    name: ClassVar[str] = "raw"
    config_class: ClassVar = RawConfig
    file_extension: ClassVar[str] = "txt"
    json_lines: ClassVar[bool] = False  # in files: one value per line, as it is

    def decoder(self) -> MessageDecoder:
        return RawDecoder(self.config)

    def encoder(self) -> MessageEncoder:
        return RawEncoder()
