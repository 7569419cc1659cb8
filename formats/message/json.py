"""``format = "json"``: one JSON object per message, the row plus its ``op`` and ``ts_ms``.

The flat changelog form the files sink writes (Debezium's ExtractNewRecordState with the op
kept): the row after the change (before it, for a delete) with values encoded as in
:mod:`formats.codec.text`, then ``"op"`` and ``"ts_ms"``.  Reading, ``op`` and ``ts_ms`` are
taken when present (an object without ``op`` is an insert; without ``ts_ms`` its event time is
the message timestamp), so plain JSON events of any producer read as inserts.
"""
from __future__ import annotations

import re
from typing import Any, ClassVar

from collections.abc import Sequence

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pj
from pydantic import Field

from formats.base import Decoded, MessageDecoder, MessageEncoder
from formats.codec.text import decode_text, string_field_met
from formats.message.base import MessageFormat, MessageFormatConfig
from formats.message.envelope import EnvelopeDecoder, Event
from formats.message.values import object_texts, ops_of, split_utf8
from runtime.batch import OPS, ChangeBatch
from runtime.schema import SchemaChange, TableSchema


class JsonMessageConfig(MessageFormatConfig):
    summary: ClassVar[str] = "a JSON object per message: the row, its op and ts_ms"

    changelog: bool = Field(True, description=(
        "write the \"op\" and \"ts_ms\" fields after the row's columns (false: the row only)"))


def _native(t: pa.DataType) -> bool:
    """Types the columnar readers parse directly.  Not decimals: they are read as JSON
    strings (what the json format writes) and cast by :func:`~formats.codec.text.decode_text`:
    ``pyarrow.json``'s own decimal conversion checks no precision after scaling up
    ("12345678901.5" came out as 12345678901.50 in a DECIMAL(12,2)) and wraps a value round
    when that overflows 128 bits (see :func:`~formats.codec.text.parse_decimal`), and no
    columnar reader carries a JSON number's digits otherwise (polars and duckdb read it
    through a double, arro3-io truncates): a decimal written as a number takes the general
    path."""
    return bool(pa.types.is_boolean(t) or pa.types.is_integer(t) or pa.types.is_floating(t)
                or pa.types.is_string(t) or pa.types.is_timestamp(t))


_POLARS: dict[str, Any] = {}


def _polars() -> Any:
    """polars, when installed (the fast path's reader), else None; imported once."""
    if "pl" not in _POLARS:
        try:
            import polars
        except ImportError:  # optional: pyarrow.json reads instead
            polars = None
        _POLARS["pl"] = polars
    return _POLARS["pl"]


#: A high surrogate escape without its low half: polars reads it as U+0000 where every other
#: reader refuses it (Python strings can't go to Arrow with it).  Searched for only where
#: polars reads; a regular expression is ~4x faster than ``bytes.find`` on a take here.
_LONE_SURROGATE = re.compile(rb"\\u[dD][89abAB][0-9a-fA-F]{2}(?!\\u[dD][c-fC-F])")


def read_columns(data: bytes, fields: list[pa.Field], exact: bool = False) -> pa.Table:
    """Newline-separated JSON objects as columns of ``fields``.  Integers, floats and
    booleans come out as ``fields`` say (a narrower integer field may come out wider, for an
    exact cast by the caller), strings as strings, timestamps parsed by pyarrow, left as
    their text by polars (for :func:`~formats.codec.text.decode_text`).

    polars' NDJSON reader (Rust) when it is installed, else ``pyarrow.json``.  Raises
    ValueError (or ArrowInvalid) when a value does not fit its field: the caller then decodes
    message by message and isolates the bad one.

    Exact: what polars would change is read by pyarrow.json, which reads every value as its
    JSON text says or fails.  ``exact`` (the caller's table has a JSON or a DECIMAL column):
    polars prints a JSON document in a string field as text of its own, and reads a JSON
    number in a string field through a double (123456789012345678.91 came out as
    "123456789012345680", 0.1000000000000000055511 as "0.1", which a DECIMAL(12,2) takes
    though the number does not fit it); pyarrow.json refuses the first and reads the digits
    of the second.  (A polars categorical takes JSON strings only, hence exact for decimals,
    but it cost more CPU than pyarrow.json on a whole pipeline here: bench/kafka_bench.py.)
    polars also reads a lone high surrogate escape as U+0000, which the others refuse: data
    with one is read by pyarrow.json too.  Its 8 and 16 bit integer readers panic: those
    fields are read as 32 bit integers."""
    pl = None if exact else _polars()
    if pl is not None and not _LONE_SURROGATE.search(data):
        return _read_polars(pl, data, fields)
    return _read_pyarrow(data, fields)


def _read_polars(pl: Any, data: bytes, fields: list[pa.Field]) -> pa.Table:
    kinds = {pa.int8(): pl.Int32, pa.int16(): pl.Int32, pa.int32(): pl.Int32,
             pa.int64(): pl.Int64, pa.float32(): pl.Float32, pa.float64(): pl.Float64,
             pa.bool_(): pl.Boolean}
    schema = {f.name: kinds.get(f.type, pl.String) for f in fields}
    try:
        t = pl.read_ndjson(data, schema=schema, ignore_errors=False).to_arrow()
    except (pl.exceptions.PolarsError, pl.exceptions.PanicException) as exc:
        raise ValueError(f"polars: {str(exc).splitlines()[0]}") from None
    # polars' strings are large strings or string views: the hub's batches hold plain strings
    return pa.table([c.cast(pa.string()) if pa.types.is_string_view(c.type) or
                     pa.types.is_large_string(c.type) else c for c in t.columns],
                    names=t.column_names)


def _read_pyarrow(data: bytes, fields: list[pa.Field]) -> pa.Table:
    # two blocks parsed by Arrow's threads at once (the GIL released): a take of 10,000
    # messages read in about 0.65x the time of one block on one thread, for the same CPU
    return pj.read_json(pa.BufferReader(data), read_options=pj.ReadOptions(
        use_threads=True, block_size=max(len(data) // 2 + 1, 1 << 16)),
        parse_options=pj.ParseOptions(explicit_schema=pa.schema(fields),
                                      unexpected_field_behavior="ignore"))


class JsonDecoder(EnvelopeDecoder):
    """With declared columns, many messages parse in one call of Arrow's JSON reader (the
    values joined by newlines); anything unusual (a tombstone, a bad message, a message with
    a line break, an ARRAY column, a JSON column holding documents rather than strings) takes
    the general path, one ``json.loads`` per message.

    A JSON column whose values are JSON strings (the text of the document, as Debezium's
    ``io.debezium.data.Json`` and many producers write it) or null reads in the fast path:
    the general path takes such a string as the document's text too.  Embedded documents
    (objects, arrays, numbers) can't come out of Arrow's reader as their text: a topic where
    they show up stays on the general path from then on."""

    name = "json"

    def decode(self, keys: Sequence[bytes | None], values: Sequence[bytes | None],
               timestamps: Sequence[int], topic: str) -> Decoded:
        fast = self._fast(values, timestamps, topic) if self.config.columns else None
        return fast if fast is not None else super().decode(keys, values, timestamps, topic)

    def _fast(self, values: Sequence[bytes | None], timestamps: Sequence[int], topic: str
              ) -> Decoded | None:
        n = len(values)
        schema = self._declared.get(topic)
        if schema is None:
            schema = self._declared[topic] = self.config.declared_schema(self.default_table(topic))
        if not n or topic in self._documents or not all(
                _native(f.type) or pa.types.is_decimal(f.type) or pa.types.is_duration(f.type)
                or pa.types.is_binary(f.type) for f, c in zip(schema.arrow_schema, schema.columns) if c.type.kind != "JSON") \
                or any(c.type.kind == "ARRAY" for c in schema.columns):
            return None
        fields = [f if _native(f.type) else pa.field(f.name, pa.string())
                  for f in schema.arrow_schema]
        meta = [m for m in ("op", "ts_ms") if m not in schema.names]
        fields += [pa.field(m, pa.string() if m == "op" else pa.int64()) for m in meta]
        try:
            data = b"\n".join(values)  # type: ignore[arg-type]
        except TypeError:  # a tombstone (None) among them: no scan of its own for it
            return None
        try:
            t = read_columns(data, fields, exact=any(c.type.kind in ("JSON", "DECIMAL")
                                                     for c in schema.columns))
            if t.num_rows != n:
                return None
            cols = []
            for f in schema.arrow_schema:
                col = t.column(f.name).combine_chunks()
                cols.append(col if col.type == f.type else decode_text(col, f.type))
        except (pa.ArrowInvalid, pa.ArrowTypeError, ValueError) as exc:
            if _never_columnar(str(exc), schema):
                self._documents.add(topic)  # don't try again
            return None
        ops = "c" * n
        if "op" in meta:
            op = t.column("op").combine_chunks().fill_null("c")
            if not pc.all(pc.is_in(op, value_set=_OPS)).as_py():
                return None
            ops = ChangeBatch.ops_from_array(op) if op.null_count < n else ops
        ts: Any
        if "ts_ms" in meta:
            col = t.column("ts_ms").combine_chunks()
            ts = col.fill_null(pa.array(timestamps, pa.int64())) if col.null_count else col
        else:
            ts = list(timestamps)
        rb = pa.RecordBatch.from_arrays(cols, schema=schema.arrow_schema)
        return Decoded([ChangeBatch(schema, ops, arrow=rb, ts_ms=ts)], [range(n)])

    def __init__(self, config: JsonMessageConfig):
        super().__init__(config)
        self._declared: dict[str, Any] = {}
        #: topics whose JSON columns hold documents or whose DECIMAL columns JSON numbers:
        #: no columnar reader carries those, so no fast path (no wasted read per take)
        self._documents: set[str] = set()

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


_OPS = pa.array(list(OPS))


def _never_columnar(error: str, schema: TableSchema) -> bool:
    """Whether pyarrow.json's ``error`` says a field read as a string met what no columnar
    reader carries: a JSON document in a JSON column (any JSON column: the old rule), a JSON
    number in a DECIMAL column (its digits: the general path reads them)."""
    met = string_field_met(error)
    if met is None:
        return False
    if any(c.type.kind == "JSON" for c in schema.columns):
        return True
    kinds = {c.name: c.type.kind for c in schema.columns}
    return kinds.get(met[0]) == "DECIMAL" and met[1] == "number"


class JsonEncoder(MessageEncoder):
    """Whole batches into JSON texts with Arrow kernels
    (:func:`formats.message.values.object_texts`).

    :meth:`encode_arrow` and :meth:`encode_keys_arrow` give the texts as one Arrow string
    array per batch, for writers that take them as they are (the Kafka sink produces from
    its buffer and keeps it in its write-ahead log); :meth:`encode` and :meth:`encode_keys`
    are those arrays split into ``bytes``."""

    def __init__(self, changelog: bool = True):
        self.changelog = changelog
        self._key_schemas: dict[TableSchema, TableSchema] = {}

    def encode_arrow(self, batch: ChangeBatch, topic: str) -> pa.Array:
        """The value of each event, as one string array without nulls."""
        extra: list[tuple[str, pa.Array | str]] = []
        if self.changelog:
            ops = batch.ops
            op: pa.Array | str = (
                f'"{ops[0]}"' if ops and ops.count(ops[0]) == len(ops)
                else pc.binary_join_element_wise('"', ops_of(ops), '"', ""))
            extra = [("op", op), ("ts_ms", batch.ts_ms_array().cast(pa.int64()).cast(pa.string()))]
        return object_texts(batch.arrow(), batch.schema, extra=extra)

    def encode_keys_arrow(self, batch: ChangeBatch, topic: str) -> pa.Array | None:
        """The primary key of each event as a JSON object, as one string array; None for
        tables without a primary key."""
        schema = batch.schema
        if not schema.primary_key:
            return None
        key_schema = self._key_schemas.get(schema)
        if key_schema is None:
            if len(self._key_schemas) > 64:
                self._key_schemas.clear()
            key_schema = self._key_schemas[schema] = schema.with_columns(
                tuple(schema.column(k) for k in schema.primary_key))
        return object_texts(batch.arrow().select(list(schema.primary_key)), key_schema)

    def encode(self, batch: ChangeBatch, topic: str) -> list[bytes | None]:
        return split_utf8(self.encode_arrow(batch, topic))  # type: ignore[return-value]

    def encode_keys(self, batch: ChangeBatch, topic: str) -> list[bytes | None]:
        keys = self.encode_keys_arrow(batch, topic)
        if keys is None:
            return [None] * len(batch)
        return split_utf8(keys)  # type: ignore[return-value]


class JsonMessageFormat(MessageFormat):
    """JSON objects, one per message (see the module docstring)."""

    name: ClassVar[str] = "json"
    config_class: ClassVar = JsonMessageConfig
    has_key_form: ClassVar[bool] = True

    def decoder(self) -> MessageDecoder:
        return JsonDecoder(self.config)

    def encoder(self) -> MessageEncoder:
        return JsonEncoder(self.config.changelog)
