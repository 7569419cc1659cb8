"""``format = "avro"`` in the files connectors: Avro object container files (``.avro``).

Writing: the file header holds the schema (the envelope record of :func:`formats.codec.avro.
envelope_record`, the same as the Kafka record values of the ``avro`` format) and, as file
metadata, ``hub.table`` and ``hub.primary-key``; each change event is one envelope record
``{before, after, op, ts_ms, source}``, encoded a batch at a time
(:mod:`formats.codec.avroencode`);
blocks of about 64 kB (Avro Java's default), compressed with ``codec``.  No schema registry:
any Avro tool reads the files.

Reading: any container file.  Envelope records (ours, Debezium's) are change events, other
records inserts; columns and logical types come from the header's schema (exact for files we
wrote: ``hub.logical-type``), the primary key from ``primary-key`` or the file's
``hub.primary-key``, the table from ``table``, else the record's ``source``, else the file's
``hub.table``, else the files source's default.  Progress is the byte offset of the next block:
a chunk is whole blocks, so a restored reader seeks straight to where it stopped.  A block
that can't be read is one bad record (naming file and offset); reading goes on at the next
sync marker.
"""
from __future__ import annotations

import json
import os
import zlib
from typing import Any, BinaryIO, Protocol

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from formats.base import BadRecordHandler
from formats.codec.avro import envelope_record, image_row, schema_columns
from formats.codec.avroencode import EMPTY, NULL_BRANCH, VALUE_BRANCH, record, varints
from formats.file.messages import MessageChunk, MessageFileReader, MessageFileWriter
from formats.file.reading import isolate_bad, short
from runtime.batch import ChangeBatch
from runtime.errors import BadRecordError
from runtime.schema import Column, TableSchema, split_table_id, table_id

#: Block size of written files (bytes before compression), Avro Java's default sync interval.
SYNC_INTERVAL = 64_000
TABLE_KEY, KEY_KEY = "hub.table", "hub.primary-key"
_OPS = frozenset("rcud")


class DeclaredTable(Protocol):
    """What a reader takes from the format's options (``avro``'s
    :class:`~formats.message.avro.AvroFileConfig`): a declared table, columns and key."""

    table: str | None
    primary_key: list[str]

    def declared_schema(self, table: str) -> TableSchema | None: ...


# -- writing ----------------------------------------------------------------------------------
class AvroFileWriter(MessageFileWriter):
    """Writes change batches of one schema as envelope records of one container file, each
    batch encoded column by column (:mod:`formats.codec.avroencode`) and cut into blocks."""

    def __init__(self, file: BinaryIO, schema: TableSchema, codec: str, level: int = 1):
        self._file = file
        self._level = level
        self._schema = schema
        self._types = [c.type for c in schema.columns]
        self._nullable = [c.nullable for c in schema.columns]
        self._codec = codec
        self._sync = os.urandom(16)
        db, table = split_table_id(schema.table)
        self._source = pa.scalar(_string(db) + _string(table), pa.binary())
        meta = {"avro.schema": json.dumps(envelope_record(schema)).encode(),
                "avro.codec": codec.encode(), TABLE_KEY: schema.table.encode(),
                KEY_KEY: json.dumps(list(schema.primary_key)).encode()}
        header = [MAGIC, _long(len(meta))]
        for key, value in meta.items():
            header += [_string(key), _long(len(value)), value]
        file.write(b"".join(header) + _long(0) + self._sync)

    def write(self, batch: ChangeBatch) -> None:
        n = len(batch)
        if not n:
            return
        rb = batch.arrow()
        null = [c.name for c, col in zip(self._schema.columns, rb.columns)
                if not c.nullable and col.null_count]
        if null:
            raise BadRecordError(f"table {batch.table}: column {null[0]!r} is NOT NULL in the "
                                 f"table schema but has null values")
        tagged = _tagged(self._image(rb))
        is_delete = pc.equal(batch.ops_array(), "d")
        before: pa.Array = pa.array([b"\x00"] * n, pa.binary())  # null branches
        if batch.before is not None and any(b is not None for b in batch.before):
            width = len(self._types)
            full = [b if b is not None else (None,) * width for b in batch.before]
            images = self._image(ChangeBatch(self._schema, batch.ops, rows=full).arrow())
            before = pc.if_else(pa.array([b is not None for b in batch.before]),
                                _tagged(images), NULL_BRANCH)
        op = _tagged(batch.ops_array().cast(pa.binary()))  # a 1-character string
        ts = varints(batch.ts_ms_array().cast(pa.int64()).to_numpy(zero_copy_only=False))
        records = pc.binary_join_element_wise(
            pc.if_else(is_delete, tagged, before), pc.if_else(is_delete, NULL_BRANCH, tagged),
            op, ts, self._source, EMPTY)
        self._write_blocks(records)

    def _image(self, rb: pa.RecordBatch) -> pa.Array:
        return record(list(rb.columns), self._types, self._nullable, rb.num_rows)

    def _write_blocks(self, records: pa.Array) -> None:
        """Blocks of about SYNC_INTERVAL bytes of records: count, size, data, sync marker."""
        n = len(records)
        offsets = np.frombuffer(records.buffers()[1], np.int32, n + 1, records.offset)
        data = records.buffers()[2]
        cuts = np.searchsorted(offsets, np.arange(offsets[0], offsets[-1], SYNC_INTERVAL)[1:])
        bounds = [0, *(int(c) for c in cuts if 0 < c < n), n]
        for lo, hi in zip(bounds, bounds[1:]):
            if hi <= lo:
                continue
            body = data[int(offsets[lo]):int(offsets[hi])].to_pybytes()
            if self._codec == "deflate":
                packer = zlib.compressobj(self._level, zlib.DEFLATED, -15)  # raw (RFC 1951)
                body = packer.compress(body) + packer.flush()
            self._file.write(_long(hi - lo) + _long(len(body)) + body + self._sync)

    def close(self) -> None:
        self._file.flush()  # every block is written whole; the file object stays open


MAGIC = b"Obj\x01"


def _tagged(data: pa.Array) -> pa.Array:
    """Union branch 1 and the data (or, for a 1-character string, its length 1 and it)."""
    return pc.binary_join_element_wise(VALUE_BRANCH, data, EMPTY)


def _long(v: int) -> bytes:
    """One zig-zag varint (header and block counts)."""
    z = (v << 1) ^ (v >> 63)
    out = bytearray()
    while z > 0x7F:
        out.append((z & 0x7F) | 0x80)
        z >>= 7
    out.append(z)
    return bytes(out)


def _string(text: str) -> bytes:
    raw = text.encode()
    return _long(len(raw)) + raw


# -- reading ----------------------------------------------------------------------------------
class AvroFileReader(MessageFileReader):
    """Reads a container file in whole blocks, about ``batch_rows`` records per chunk."""

    def __init__(self, path: str, progress: int, batch_rows: int, config: DeclaredTable,
                 table: str, timestamp_ms: int, on_bad_record: BadRecordHandler | None):
        import fastavro

        self.path = path
        self._config = config
        self._default_table = table
        self._ts = timestamp_ms
        self._batch_rows = max(1, batch_rows)
        self._on_bad = on_bad_record
        self._file = open(path, "rb")  # noqa: SIM115 - closed in close()
        try:
            blocks = fastavro.block_reader(self._file)
        except Exception as exc:  # noqa: BLE001 - not an Avro file: the split can't be read
            self._file.close()
            raise OSError(f"not an Avro container file: {exc}") from None
        header_end = self._file.tell()
        self._metadata = blocks.metadata
        self._file.seek(header_end - 16)
        self._sync = self._file.read(16)  # the header ends with the file's sync marker
        self._pos = max(progress, header_end)
        self._blocks = self._blocks_from(self._pos, blocks)
        try:
            self._envelope, self._cols, self._times = _columns(
                json.loads(self._metadata["avro.schema"]))
        except (KeyError, TypeError, ValueError, StopIteration) as exc:
            self._file.close()
            raise OSError(f"unsupported Avro schema: {type(exc).__name__}: {exc}") from None
        self._pk = self._primary_key()
        self._schemas: dict[str, tuple[TableSchema, list[Column], list[int]]] = {}
        self._eof = False

    def _blocks_from(self, offset: int, blocks: Any = None) -> Any:
        """A block iterator positioned at byte ``offset`` (fastavro reads the header first)."""
        if blocks is None:
            import fastavro

            self._file.seek(0)
            blocks = fastavro.block_reader(self._file)
        self._file.seek(offset)
        return iter(blocks)

    def _primary_key(self) -> tuple[str, ...]:
        if self._config.primary_key:
            return tuple(self._config.primary_key)
        try:
            pk = json.loads(self._metadata.get(KEY_KEY) or "[]")
        except ValueError:
            pk = []
        return tuple(k for k in pk if isinstance(k, str))

    # -- MessageFileReader ----------------------------------------------------------------------
    def read(self) -> MessageChunk | None:
        if self._eof:
            return None
        first = self._pos
        records: list[dict] = []
        places: list[tuple[int, int]] = []  # (block offset, index in block) of each record
        while len(records) < self._batch_rows:
            start = self._pos
            try:
                block = next(self._blocks)
                got = list(block)  # decodes the block (fastavro, in C)
            except StopIteration:
                self._eof = True
                break
            except Exception as exc:  # noqa: BLE001 - a corrupt block is a bad record
                self._bad(BadRecordError(f"{self.path}: the avro block at byte offset {start} "
                                         f"can't be read: {short(exc)}"), None)
                self._pos = self._resync(start)
                self._blocks = self._blocks_from(self._pos)
                continue
            self._pos = block.offset + block.size
            records.extend(got)
            places.extend((start, i) for i in range(len(got)))
        if not records and self._pos == first:
            return None  # the end of the file
        return MessageChunk(self._decode(records, places), self._pos)

    def close(self) -> None:
        self._file.close()

    # -- internals ------------------------------------------------------------------------------
    def _resync(self, start: int) -> int:
        """Byte offset just after the next sync marker after ``start`` (the end of the file
        when there is none)."""
        sync = self._sync
        self._file.seek(start + 1)
        tail = b""
        while True:
            chunk = self._file.read(1 << 20)
            if not chunk:
                self._eof = True
                return self._file.tell()
            data = tail + chunk
            at = data.find(sync)
            if at >= 0:
                return self._file.tell() - len(data) + at + len(sync)
            tail = data[-15:]

    def _bad(self, err: BadRecordError, record: Any) -> None:
        if self._on_bad is None:
            raise err
        self._on_bad(err, record)

    def _table_schema(self, table: str) -> tuple[TableSchema, list[Column], list[int]]:
        """(schema, its columns, indexes of its TIME columns) of ``table``: the file's
        columns, or the declared ``columns`` (values then taken by name)."""
        hit = self._schemas.get(table)
        if hit is None:
            declared = self._config.declared_schema(table)
            if declared is not None:
                cols = list(declared.columns)
                hit = (declared, cols, [i for i, c in enumerate(cols) if c.type.kind == "TIME"])
            else:
                names = {c.name for c in self._cols}
                hit = (TableSchema(table, tuple(self._cols),
                                   tuple(k for k in self._pk if k in names)),
                       self._cols, self._times)
            self._schemas[table] = hit
        return hit

    def _decode(self, records: list[dict], places: list[tuple[int, int]]
                ) -> list[ChangeBatch]:
        """Envelopes or rows as batches, one per run of records of one table."""
        out: list[ChangeBatch] = []
        run: list[tuple[int, str, tuple, tuple | None, int]] = []
        run_table: str | None = None
        fixed = self._config.table
        for k, rec in enumerate(records):
            try:
                if self._envelope:
                    op = rec["op"]
                    if op not in _OPS:
                        continue  # e.g. Debezium's "t" (truncate) or "m": no row change
                    src = rec.get("source") or {}
                    table = fixed or (table_id(src['db'], src['table']) if src.get("db")
                                      and src.get("table") else self._file_table())
                    ts = src.get("ts_ms")
                    ts = ts if ts is not None else rec.get("ts_ms")
                    ts = ts if ts is not None else self._ts
                    image = rec["before"] if op == "d" else rec["after"]
                    before = rec.get("before") if op == "u" else None
                else:
                    op, image, before, ts = "c", rec, None, self._ts
                    table = fixed or self._file_table()
                if image is None:
                    raise ValueError(f"op {op!r} without its row image")
                _, cols, times = self._table_schema(table)
                row = image_row(image, cols, times)
                brow = image_row(before, cols, times) if before is not None else None
            except (KeyError, TypeError, ValueError, AttributeError) as exc:
                off, i = places[k]
                self._bad(BadRecordError(f"{self.path}: record {i} of the avro block at byte "
                                         f"offset {off}: {type(exc).__name__}: {exc}"), rec)
                continue
            if table != run_table:
                self._flush(run, run_table, out, records, places)
                run, run_table = [], table
            run.append((k, op, row, brow, int(ts)))
        self._flush(run, run_table, out, records, places)
        return out

    def _file_table(self) -> str:
        return self._metadata.get(TABLE_KEY) or self._default_table

    def _flush(self, run: list, table: str | None, out: list[ChangeBatch], records: list[dict],
               places: list[tuple[int, int]]) -> None:
        """The run as one batch, converted to Arrow now so a value that does not fit its
        column is a bad record here, not an error further down the pipeline."""
        if not run or table is None:
            return
        schema = self._table_schema(table)[0]
        ok: list[tuple[int, int]] = []

        def convert(lo: int, hi: int) -> pa.RecordBatch:
            part = run[lo:hi]
            rb = ChangeBatch(schema, "".join(r[1] for r in part),
                             rows=[r[2] for r in part]).arrow()
            ok.append((lo, hi))
            return rb

        def report(j: int, exc: Exception) -> None:
            off, i = places[run[j][0]]
            self._bad(BadRecordError(f"{self.path}: record {i} of the avro block at byte offset "
                                     f"{off}: {table}: {short(exc)}"), records[run[j][0]])

        batches = isolate_bad(len(run), convert, report)
        good = run if ok == [(0, len(run))] else [r for lo, hi in ok for r in run[lo:hi]]
        if not good:
            return
        rb = batches[0] if len(batches) == 1 else pa.concat_batches(batches)
        before = [r[3] for r in good]
        out.append(ChangeBatch(schema, "".join(r[1] for r in good), arrow=rb,
                               before=before if any(b is not None for b in before) else None,
                               ts_ms=np.array([r[4] for r in good], dtype=np.int64)))


def _columns(raw: dict) -> tuple[bool, list[Column], list[int]]:
    """(envelope?, columns, indexes of TIME columns) of a file's writer schema."""
    if raw.get("type") != "record":
        raise OSError("the Avro file's schema is not a record")
    return schema_columns(raw)
