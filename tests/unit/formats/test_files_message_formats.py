"""Message formats in files: line files (one message per line) and Avro container files,
written and read back through ``open_file_writer`` / ``open_file_reader``."""
from __future__ import annotations

import datetime as dt
import io
import json
from decimal import Decimal
from pathlib import Path

import fastavro
import pytest
from pydantic import ValidationError

from formats.file.messages import MessageChunk
from formats.message.base import MessageFormat
from formats.registry import resolve_files_format
from runtime.batch import ChangeBatch
from runtime.errors import BadRecordError
from runtime.schema import Column, SchemaChange, TableSchema
from runtime.types import T

SCHEMA = TableSchema("shop.orders", (
    Column("id", T("BIGINT"), False), Column("name", T("STRING")),
    Column("amount", T("DECIMAL(10,2)")), Column("at", T("TIMESTAMP(6)")),
    Column("t", T("TIME(6)")), Column("day", T("DATE")), Column("ltz", T("TIMESTAMP_LTZ(3)")),
    Column("doc", T("JSON")), Column("tags", T("ARRAY<STRING>")), Column("raw", T("BYTES")),
), ("id",))
JSON_FORMATS = ("json", "debezium-json", "canal-json", "maxwell-json")


def _row(i: int, name: str | None = None) -> tuple:
    return (i, name or f"n{i}", Decimal(i) / 4, dt.datetime(2024, 1, 1, 0, 0, i % 60, 123456),
            dt.timedelta(hours=-1, microseconds=i), dt.date(2024, 2, 1 + i % 28),
            dt.datetime(2024, 3, 1, 12, tzinfo=dt.timezone.utc), json.dumps({"k": i}),
            ["a", f"b{i}"], bytes([i % 256, 10]))


def _changes(n: int = 20) -> ChangeBatch:
    """Inserts, then an update (with its before image) and a delete of the first rows."""
    rows = [_row(i) for i in range(n)] + [_row(0, "renamed"), _row(1)]
    before = [None] * n + [_row(0), None]
    return ChangeBatch(SCHEMA, "c" * n + "ud", rows=rows, before=before,
                       ts_ms=list(range(1000, 1000 + n + 2)))


def _write(fmt: MessageFormat, path: Path, *batches: ChangeBatch, **kw) -> None:
    buf = io.BytesIO()
    w = fmt.open_file_writer(buf, batches[0].schema, **kw)
    for b in batches:
        w.write(b)
    w.close()
    path.write_bytes(buf.getvalue())


def _read(fmt: MessageFormat, path: Path, progress: int = 0, batch_rows: int = 8,
          **kw) -> list[MessageChunk]:
    with fmt.open_file_reader(str(path), progress, table="files.x", timestamp_ms=7,
                              batch_rows=batch_rows, **kw) as r:
        out = []
        while (chunk := r.read()) is not None:
            out.append(chunk)
        return out


def _events(chunks: list[MessageChunk]) -> list[tuple]:
    return [(b.table, op, row[:2], ts) for c in chunks for b in c.elements
            if isinstance(b, ChangeBatch) for op, row, ts in zip(b.ops, b.rows(), b.ts_ms_list())]


@pytest.mark.parametrize("name", [*JSON_FORMATS, "avro"])
def test_written_files_read_back_as_the_same_change_events(tmp_path: Path, name: str) -> None:
    fmt = resolve_files_format(name, {"primary-key": ["id"]})
    path = tmp_path / f"x.{fmt.file_extension}"
    batch = _changes()
    _write(fmt, path, batch.slice(0, 10), batch.slice(10, 22))
    chunks = _read(fmt, path)
    assert len(chunks) >= (3 if name != "avro" else 1)  # about batch_rows lines, whole blocks
    table = "files.x" if name == "json" else "shop.orders"
    ts = list(range(1000, 1022)) if name != "maxwell-json" else [1000] * 22  # seconds
    assert _events(chunks) == [(table, op, row[:2], t) for op, row, t in
                               zip(batch.ops, batch.rows(), ts)]
    batches = [b for c in chunks for b in c.elements if isinstance(b, ChangeBatch)]
    assert all(b.schema.primary_key == ("id",) for b in batches)
    if name in ("avro", "canal-json"):  # types from the file: values exact
        assert batches[0].rows()[1][:7] == _row(1)[:7]
    if name != "json":  # the update's before image (json has none)
        before = [b for bt in batches for b in (bt.before or [])]
        assert [b[1] for b in before if b is not None] == ["n0"]


def test_line_files_hold_what_a_kafka_value_holds(tmp_path: Path) -> None:
    for name in JSON_FORMATS:
        fmt = resolve_files_format(name)
        path = tmp_path / f"{name}.json"
        batch = _changes(3)
        _write(fmt, path, batch)
        assert path.read_bytes() == b"".join(v + b"\n" for v in fmt.encoder().encode(
            batch, batch.table)), name


def test_debezium_delete_is_one_envelope_and_tombstones_are_skipped(tmp_path: Path) -> None:
    fmt = resolve_files_format("debezium-json")
    _write(fmt, tmp_path / "x.json", _changes(2))
    lines = [json.loads(line) for line in (tmp_path / "x.json").read_text().splitlines()]
    assert [m["op"] for m in lines] == ["c", "c", "u", "d"]
    assert lines[3]["after"] is None and lines[3]["before"]["id"] == 1
    assert lines[2]["before"]["name"] == "n0" and lines[2]["after"]["name"] == "renamed"


def test_resume_from_any_progress_is_exact(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr("formats.file.avro.SYNC_INTERVAL", 5000)  # many blocks
    for name in ("debezium-json", "avro"):
        fmt = resolve_files_format(name, {"primary-key": ["id"]})
        path = tmp_path / f"x.{fmt.file_extension}"
        batch = _changes(300)
        _write(fmt, path, *(batch.slice(i, i + 50) for i in range(0, 302, 50)))
        whole = _events(_read(fmt, path, batch_rows=40))
        assert len(whole) == 302
        for chunk_rows in (7, 64):
            chunks = _read(fmt, path, batch_rows=chunk_rows)
            seen: list[tuple] = []
            for k, c in enumerate(chunks):  # restart after every chunk: nothing lost or repeated
                seen += _events([c])
                if k % 3 == 0:
                    assert seen + _events(_read(fmt, path, c.progress, chunk_rows)) == whole


def test_bad_lines_name_file_line_and_offset(tmp_path: Path) -> None:
    fmt = resolve_files_format("debezium-json", {"primary-key": ["id"]})
    path = tmp_path / "x.json"
    good = fmt.encoder().encode(_changes(3), "t")
    path.write_bytes(good[0] + b"\n\n" + b'{"op": "c", "after": {"id": 1}, ' + b"\n" + good[1]
                     + b"\n" + b'{"before": null}\n' + good[2] + b"\n")
    with pytest.raises(BadRecordError) as err:
        _read(fmt, path)
    offset = len(good[0]) + 2
    assert str(err.value).startswith(f"{path}:3: not a debezium-json message")
    assert str(err.value).endswith(f"(byte offset {offset})") and "\n" not in str(err.value)
    bad: list[tuple[str, bytes]] = []
    chunks = _read(fmt, path, on_bad_record=lambda e, rec: bad.append((str(e), rec)))
    assert [e.split(": ")[0] for e, _ in bad] == [f"{path}:3", f"{path}:5"]
    assert bad[1][1] == b'{"before": null}' and "no 'op' field" in bad[1][0]
    assert len(_events(chunks)) == 3


def test_json_line_breaks_become_spaces_raw_ones_are_bad_records(tmp_path: Path) -> None:
    schema = TableSchema("db.t", (Column("id", T("BIGINT"), False), Column("doc", T("JSON"))),
                         ("id",))
    batch = ChangeBatch(schema, "cc", rows=[(1, '{\n  "a": "x\\ny"\n}'), (2, '{"b": 2}')])
    fmt = resolve_files_format("json")
    _write(fmt, tmp_path / "x.json", batch)
    lines = (tmp_path / "x.json").read_bytes().split(b"\n")
    assert len(lines) == 3 and json.loads(lines[0])["doc"] == {"a": "x\ny"}
    raw_schema = TableSchema("db.t", (Column("id", T("BIGINT"), False),
                                      Column("v", T("STRING"))), ("id",))
    raw = resolve_files_format("raw", {"value-type": "STRING"})
    values = ChangeBatch(raw_schema, "ccdc", rows=[(1, "a"), (2, "b\nc"), (3, "gone"), (4, "")])
    with pytest.raises(BadRecordError, match=r"table db.t: .*key \(2,\).* line break"):
        _write(raw, tmp_path / "x.txt", values)
    bad: list = []
    _write(raw, tmp_path / "x.txt", values, on_bad_record=lambda e, rec: bad.append(rec))
    assert bad == [b"b\nc"]
    assert (tmp_path / "x.txt").read_bytes() == b"a\n\n"  # the delete has no value: no line
    assert [r for c in _read(raw, tmp_path / "x.txt") for b in c.elements
            for r in b.rows()] == [("a",), ("",)]


def test_schema_part_changes_become_schema_change_events(tmp_path: Path) -> None:
    fmt = resolve_files_format("debezium-json", {"schema-include": True})
    narrow = TableSchema("db.t", (Column("id", T("BIGINT"), False),), ("id",))
    wide = TableSchema("db.t", narrow.columns + (Column("v", T("DECIMAL(5,1)")),), ("id",))
    buf = io.BytesIO()
    fmt.open_file_writer(buf, narrow).write(ChangeBatch(narrow, "c", rows=[(1,)]))
    fmt.open_file_writer(buf, wide).write(ChangeBatch(wide, "c", rows=[(2, Decimal("1.5"))]))
    (tmp_path / "x.json").write_bytes(buf.getvalue())
    elements = [e for c in _read(fmt, tmp_path / "x.json") for e in c.elements]
    assert [type(e).__name__ for e in elements] == ["ChangeBatch", "SchemaChange", "ChangeBatch"]
    change = elements[1]
    assert isinstance(change, SchemaChange) and change.kind == "add_column"
    assert elements[2].rows() == [(2, Decimal("1.5"))]


def test_avro_container_files_need_no_registry_and_any_tool_reads_them(tmp_path: Path) -> None:
    with pytest.raises(ValidationError) as err:
        from formats.registry import resolve_message_format

        resolve_message_format("avro")  # Kafka still needs the registry
    assert [e["loc"] for e in err.value.errors()] == [("format-options", "schema-registry-url")]
    fmt = resolve_files_format("avro", {"codec": "null"})
    _write(fmt, tmp_path / "x.avro", _changes(5))
    with open(tmp_path / "x.avro", "rb") as f:
        reader = fastavro.reader(f)
        records = list(reader)
        assert reader.metadata["hub.table"] == "shop.orders"
        assert json.loads(reader.metadata["hub.primary-key"]) == ["id"]
    assert [r["op"] for r in records] == ["c"] * 5 + ["u", "d"]
    assert records[5]["before"]["name"] == "n0" and records[6]["after"] is None
    assert records[0]["after"]["amount"] == Decimal("0.00")
    with pytest.raises(ValidationError) as err:
        resolve_files_format("avro", {"codec": "lzma"})
    assert [e["loc"] for e in err.value.errors()] == [("format-options", "codec")]


def test_avro_corrupt_block_is_one_bad_record_and_reading_goes_on(tmp_path: Path,
                                                                  monkeypatch) -> None:
    monkeypatch.setattr("formats.file.avro.SYNC_INTERVAL", 5000)  # many blocks
    fmt = resolve_files_format("avro", {"codec": "null"})
    batch = _changes(300)
    _write(fmt, tmp_path / "x.avro", *(batch.slice(i, i + 100) for i in range(0, 302, 100)))
    data = bytearray((tmp_path / "x.avro").read_bytes())
    with open(tmp_path / "x.avro", "rb") as f:
        blocks = [(b.offset, b.num_records) for b in fastavro.block_reader(f)]
    assert len(blocks) >= 3
    off, lost = blocks[1]
    data[off + 40: off + 60] = b"\xff" * 20  # garbage inside the second block
    (tmp_path / "x.avro").write_bytes(bytes(data))
    bad: list[str] = []
    events = _events(_read(fmt, tmp_path / "x.avro", on_bad_record=lambda e, r: bad.append(str(e))))
    assert len(bad) >= 1 and all(str(tmp_path / "x.avro") in e for e in bad)
    assert f"byte offset {off}" in bad[0]
    assert 302 - lost - 1 <= len(events) < 302
    assert events[-1][2] == (1, "n1")  # the blocks after the bad one were read


def test_not_an_avro_file_can_not_be_opened(tmp_path: Path) -> None:
    (tmp_path / "x.avro").write_bytes(b"hello\n")
    with pytest.raises(OSError, match="not an Avro container file"):
        _read(resolve_files_format("avro"), tmp_path / "x.avro")


def test_resolving_for_files() -> None:
    assert resolve_files_format("parquet").extension == "parquet"
    exts = {n: resolve_files_format(n).file_extension for n in (*JSON_FORMATS, "avro", "raw")}
    assert exts == {"json": "json", "debezium-json": "json", "canal-json": "json",
                    "maxwell-json": "json", "avro": "avro", "raw": "txt"}
    fmt = resolve_files_format("maxwell-json", {"table": "a.b"}, {"table": "c.d", "columns": None,
                                                                  "primary-key": ["id"]})
    assert fmt.config.table == "a.b" and fmt.config.primary_key == ["id"]
    with pytest.raises(ValidationError) as err:
        resolve_files_format("debezium-json", {"schema-include": "maybe"})
    assert [e["loc"] for e in err.value.errors()] == [("format-options", "schema-include")]


def test_avro_encoding_of_every_logical_type_and_edge_value(tmp_path: Path) -> None:
    """The vectorised Avro encoder against fastavro's decoder: every value comes back."""
    types = {"id": "BIGINT", "b": "BOOLEAN", "i8": "TINYINT", "i16": "SMALLINT", "i32": "INT",
             "i64": "BIGINT", "f": "FLOAT", "d": "DOUBLE", "dec": "DECIMAL(10,2)",
             "wide": "DECIMAL(50,10)", "c": "CHAR(3)", "s": "STRING", "j": "JSON",
             "by": "BYTES", "day": "DATE", "t": "TIME(6)", "ts": "TIMESTAMP(6)",
             "ms": "TIMESTAMP(3)", "ltz": "TIMESTAMP_LTZ(6)", "tags": "ARRAY<STRING>",
             "nums": "ARRAY<BIGINT>"}
    schema = TableSchema("db.all", tuple(Column(n, T(t), n != "id") for n, t in types.items()),
                         ("id",))
    utc = dt.timezone.utc
    rows = [
        (0, True, -128, -32768, -2**31, -2**63, -1.5, float("-inf"), Decimal("-99999999.99"),
         Decimal("-1234567890123456789012345678901234567890.0123456789"), "abc", "",
         '{"a": [1, 2]}', b"", dt.date(1, 1, 1), dt.timedelta(hours=-838, minutes=-59),
         dt.datetime(1900, 1, 1, 0, 0, 0, 1), dt.datetime(1969, 12, 31, 23, 59, 59, 999000),
         dt.datetime(1, 1, 1, tzinfo=utc), [], [-1, 2**63 - 1]),
        (1, False, 127, 32767, 2**31 - 1, 2**63 - 1, 3.25, float("inf"), Decimal("99999999.99"),
         Decimal("0.0000000001"), "xyz", "ünïcödé ✓ \x00", "null", bytes(range(256)),
         dt.date(9999, 12, 31), dt.timedelta(microseconds=1), dt.datetime(9999, 12, 31, 23, 59),
         dt.datetime(2024, 2, 29, 12, 0, 0, 123000), dt.datetime(2024, 1, 1, tzinfo=utc),
         ["x", None, ""], [None]),
        (2, *([None] * (len(types) - 1))),
        (3, None, 0, 0, 0, 0, 0.0, 0.0, Decimal("0.00"), Decimal(0), None, "s" * 300, None,
         None, dt.date(1970, 1, 1), dt.timedelta(0), None, None, None, None, []),
    ]
    batch = ChangeBatch(schema, "cccd", rows=rows, ts_ms=[-5, 0, 2**40, 7])
    for codec in ("null", "deflate"):
        fmt = resolve_files_format("avro", {"codec": codec})
        _write(fmt, tmp_path / "all.avro", batch)
        (got,) = [b for c in _read(fmt, tmp_path / "all.avro") for b in c.elements]
        assert got.ops == "cccd" and got.ts_ms_list() == [-5, 0, 2**40, 7]
        assert got.schema.columns == schema.columns
        assert got.rows() == rows, codec
