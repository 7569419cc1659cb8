"""``format = "avro"``: Avro in the Confluent Schema Registry wire format (a zero byte, the
4-byte big-endian schema id, the Avro binary datum).

Writing: the value is a Debezium-shaped envelope record ``{before, after, op, ts_ms, source}``
(``before``/``after`` of the table's row record); keys are the primary key's record.  Schemas
are registered under ``<topic>-value`` / ``<topic>-key`` (TopicNameStrategy).  Every field
carries its logical type in the ``hub.logical-type`` property, so reading back is exact; Avro
logical types carry the values: decimal (bytes), date, local-timestamp-micros (TIMESTAMP),
timestamp-micros (TIMESTAMP_LTZ), TIME as signed microseconds (a long: MySQL TIME reaches
-838:59:59, which Avro's time-micros can't hold).  The mapping is :mod:`formats.codec.avro`.

Reading: the schema is fetched by id (cached).  A record with ``before``/``after``/``op``
fields is an envelope (ours or Debezium's ``debezium-avro``), any other record a row
(an insert).  The primary key comes from ``primary-key`` or the fields of the key's schema.

In the files connectors, ``avro`` means Avro object container files of the same envelope
records, with the schema in the file header and no registry (:mod:`formats.file.avro`).
"""
from __future__ import annotations

import io
import struct
from collections.abc import Sequence
from typing import Any, BinaryIO, ClassVar, Literal

from pydantic import Field

from formats.base import BadRecordHandler, Decoded, MessageDecoder, MessageEncoder
from formats.codec.avro import (avro_name, envelope_record, image_row, row_image, row_record,
                                schema_columns)
from formats.file.avro import AvroFileReader, AvroFileWriter
from formats.file.messages import MessageFileReader, MessageFileWriter
from formats.message.base import MessageFormat, MessageFormatConfig, event_time, topic_table
from formats.message.schema_registry import SchemaRegistry
from formats.message.values import schema_changes
from runtime.batch import ChangeBatch
from runtime.errors import HubError
from runtime.schema import Column, TableSchema, split_table_id, table_id

_HEADER = struct.Struct(">bI")
_OPS = {"r", "c", "u", "d"}


class AvroConfig(MessageFormatConfig):
    summary: ClassVar[str] = ("Avro: Confluent Schema Registry wire format in Kafka; object "
                              "container files (.avro) in the files connectors, whose options "
                              "there are codec (null|deflate, default deflate) and "
                              "compression-level (1-9, default 1) instead of the registry's")

    schema_registry_url: str = Field(description=(
        "Schema Registry URL (also settable as the connector's schema-registry-url); "
        "not used by the files connectors"))


class AvroFileConfig(MessageFormatConfig):
    """Options of ``format = "avro"`` in the files connectors: container files carry their
    schema in the header, no registry."""

    codec: Literal["null", "deflate"] = Field("deflate", description=(
        "files sink: compression of the blocks of Avro container files (reading takes any "
        "codec fastavro knows)"))
    compression_level: int = Field(1, ge=1, le=9, description=(
        "files sink: deflate level, 1 (fast: about 3x the speed of 6) to 9 (small)"))


# -- decoding ---------------------------------------------------------------------------------
class AvroDecoder(MessageDecoder):
    def __init__(self, config: AvroConfig):
        self.config = config
        self.registry = SchemaRegistry(config.schema_registry_url)
        self._parsed: dict[int, tuple[Any, bool, list, list]] = {}
        self._keys: dict[int, tuple[str, ...]] = {}
        self.schemas: dict[str, TableSchema] = {}
        self._schema_cache: dict[tuple, TableSchema] = {}

    def _reader(self, sid: int) -> tuple[Any, bool, list, list]:
        hit = self._parsed.get(sid)
        if hit is None:
            import fastavro

            raw = self.registry.schema(sid)
            envelope, cols, times = schema_columns(raw)
            hit = (fastavro.parse_schema(raw), envelope, cols, times)
            self._parsed[sid] = hit
        return hit

    def _primary_key(self, key: bytes | None) -> tuple[str, ...]:
        if self.config.primary_key:
            return tuple(self.config.primary_key)
        if not key or len(key) < 5 or key[0] != 0:
            return ()
        sid = _HEADER.unpack_from(key)[1]
        if sid not in self._keys:
            raw = self.registry.schema(sid)
            self._keys[sid] = tuple(f["name"] for f in raw.get("fields", []))
        return self._keys[sid]

    def decode(self, keys: Sequence[bytes | None], values: Sequence[bytes | None],
               timestamps: Sequence[int], topic: str) -> Decoded:
        from fastavro import schemaless_reader

        out = Decoded()
        run: list[tuple[int, str, tuple, tuple | None, int]] = []
        run_schema: TableSchema | None = None
        for i, value in enumerate(values):
            if value is None:
                continue
            try:
                if len(value) < 5 or value[0] != 0:
                    raise ValueError("no Confluent wire-format header (magic byte 0 + id)")
                sid = _HEADER.unpack_from(value)[1]
                parsed, envelope, cols, times = self._reader(sid)
                rec = schemaless_reader(io.BytesIO(value[5:]), parsed)
                table = self.config.table or topic_table(topic)
                if envelope:
                    op = rec["op"]
                    src = rec.get("source") or {}
                    if not self.config.table and src.get("db") and src.get("table"):
                        table = table_id(src['db'], src['table'])
                    ts = event_time(src.get("ts_ms"), rec.get("ts_ms"), timestamps[i])
                    if op not in _OPS:
                        continue
                    image = rec["before"] if op == "d" else rec["after"]
                    before = rec.get("before") if op == "u" else None
                else:
                    op, image, before, ts = "c", rec, None, timestamps[i]
                if image is None:
                    raise ValueError(f"op {op!r} without its row image")
                row = image_row(image, cols, times)
                brow = image_row(before, cols, times) if before is not None else None
                schema = self._schema(table, sid, cols, keys[i])
            except HubError:  # the registry failed, not the message: never a bad record
                raise
            except Exception as exc:  # noqa: BLE001 - any decoding failure is a bad message
                out.bad.append((i, f"not an avro message: {type(exc).__name__}: {exc}"))
                continue
            if schema is not run_schema:
                self._flush(run, run_schema, out)
                run = []
                old = self.schemas.get(table)
                if old is not None and old != schema:
                    for ch in schema_changes(old, schema, ts):
                        out.elements.append(ch)
                        out.indexes.append([i])
                self.schemas[table] = schema
                run_schema = schema
            run.append((i, op, row, brow, ts))
        self._flush(run, run_schema, out)
        return out

    def _schema(self, table: str, sid: int, cols: list[Column], key: bytes | None
                ) -> TableSchema:
        cache = self._schema_cache
        pk = self._primary_key(key)
        hit = cache.get((table, sid, pk))
        if hit is None:
            names = {c.name for c in cols}
            hit = cache[(table, sid, pk)] = TableSchema(table, tuple(cols),
                                                        tuple(k for k in pk if k in names))
        return hit

    @staticmethod
    def _flush(run: list, schema: TableSchema | None, out: Decoded) -> None:
        if not run or schema is None:
            return
        ops = "".join(r[1] for r in run)
        before = [r[3] for r in run] if any(r[3] is not None for r in run) else None
        out.elements.append(ChangeBatch(schema, ops, rows=[r[2] for r in run], before=before,
                                        ts_ms=[r[4] for r in run]))
        out.indexes.append([r[0] for r in run])


# -- encoding ---------------------------------------------------------------------------------
class AvroEncoder(MessageEncoder):
    def __init__(self, config: AvroConfig):
        self.registry = SchemaRegistry(config.schema_registry_url)
        self._writers: dict[tuple[TableSchema, str, bool], tuple[bytes, Any]] = {}

    def _writer(self, schema: TableSchema, subject: str, envelope: bool) -> tuple[bytes, Any]:
        hit = self._writers.get((schema, subject, envelope))
        if hit is None:
            import fastavro

            if envelope:
                avro = envelope_record(schema)
            else:
                avro = {**row_record(schema, f"{avro_name(schema.table)}_Key"),
                        "namespace": "hub"}
            sid = self.registry.register(subject, avro)
            hit = (_HEADER.pack(0, sid), fastavro.parse_schema(avro))
            self._writers[(schema, subject, envelope)] = hit
        return hit

    def encode(self, batch: ChangeBatch, topic: str) -> list[bytes | None]:
        from fastavro import schemaless_writer

        schema = batch.schema
        header, parsed = self._writer(schema, f"{topic}-value", True)
        names = schema.names
        times = [j for j, c in enumerate(schema.columns) if c.type.kind == "TIME"]
        db, table = split_table_id(schema.table)
        source = {"db": db, "table": table}
        before = batch.before or [None] * len(batch)
        out: list[bytes | None] = []
        for op, row, b, ts in zip(batch.ops, batch.rows(), before, batch.ts_ms_list()):
            image = row_image(names, row, times)
            rec = {"before": image if op == "d" else (
                       row_image(names, b, times) if b is not None else None),
                   "after": None if op == "d" else image, "op": op, "ts_ms": ts,
                   "source": source}
            buf = io.BytesIO()
            buf.write(header)
            schemaless_writer(buf, parsed, rec)
            out.append(buf.getvalue())
        return out

    def encode_keys(self, batch: ChangeBatch, topic: str) -> list[bytes | None]:
        from fastavro import schemaless_writer

        s = batch.schema
        if not s.primary_key:
            return [None] * len(batch)
        ks = s.with_columns(tuple(s.column(k) for k in s.primary_key))
        header, parsed = self._writer(ks, f"{topic}-key", False)
        idx = s.key_indexes
        times = [j for j, c in enumerate(ks.columns) if c.type.kind == "TIME"]
        out: list[bytes | None] = []
        for row in batch.rows():
            buf = io.BytesIO()
            buf.write(header)
            schemaless_writer(buf, parsed, row_image(ks.names, tuple(row[i] for i in idx), times))
            out.append(buf.getvalue())
        return out


class AvroFormat(MessageFormat):
    """Avro with the Confluent Schema Registry (see the module docstring)."""

    name: ClassVar[str] = "avro"
    config_class: ClassVar = AvroConfig
    has_key_form: ClassVar[bool] = True
    needs_registry: ClassVar[bool] = True
    file_config_class: ClassVar = AvroFileConfig
    file_extension: ClassVar[str] = "avro"

    def decoder(self) -> MessageDecoder:
        return AvroDecoder(self.config)

    def encoder(self) -> MessageEncoder:
        return AvroEncoder(self.config)

    # -- files: Avro object container files (formats.file.avro), configured by AvroFileConfig -
    def open_file_writer(self, file: BinaryIO, schema: TableSchema,
                         on_bad_record: BadRecordHandler | None = None) -> MessageFileWriter:
        return AvroFileWriter(file, schema, self.config.codec, self.config.compression_level)

    def open_file_reader(self, path: str, progress: int = 0, *, table: str, timestamp_ms: int,
                         batch_rows: int = 8192,
                         on_bad_record: BadRecordHandler | None = None) -> MessageFileReader:
        return AvroFileReader(path, progress, batch_rows, self.config, table, timestamp_ms,
                              on_bad_record)
