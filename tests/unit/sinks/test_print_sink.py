"""Print and blackhole sinks."""
from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from runtime import plugins
from runtime.batch import ChangeBatch
from runtime.schema import Column, SchemaChange, TableSchema
from runtime.types import T
from sink_helpers import commit_context, orders, writer_context
from sinks.blackhole.config import BlackholeSinkConfig
from sinks.blackhole.sink import BlackholeSink
from sinks.print.config import PrintSinkConfig
from sinks.print.sink import PrintSink

SCHEMA = TableSchema("shop.users", (Column("id", T("INT")), Column("name", T("STRING")),
                                    Column("born", T("DATE")), Column("vip", T("BOOLEAN"))))


def print_sink(**options: object) -> PrintSink:
    return PrintSink(PrintSinkConfig.model_validate({k.replace("_", "-"): v
                                                     for k, v in options.items()}))


def test_prints_one_line_per_row_image_like_flink(capsys: pytest.CaptureFixture[str]) -> None:
    writer = print_sink().create_writer(writer_context(), None)
    born = dt.date(1990, 5, 17)
    writer.write(ChangeBatch(SCHEMA, "rcud", rows=[(1, "Ann", born, True), (2, None, None, False),
                                                   (1, "Anna", born, True), (2, None, None, False)],
                             before=[None, None, (1, "Ann", born, True), None]))
    assert capsys.readouterr().out.splitlines() == [
        "shop.users +I[1, Ann, 1990-05-17, true]",
        "shop.users +I[2, null, null, false]",
        "shop.users -U[1, Ann, 1990-05-17, true]",
        "shop.users +U[1, Anna, 1990-05-17, true]",
        "shop.users -D[2, null, null, false]",
    ]
    assert writer.prepare_commit(1) == []


def test_prefix_limit_and_stderr(capsys: pytest.CaptureFixture[str]) -> None:
    sink = print_sink(print_identifier="dbg", standard_error=True, limit=3)
    writer = sink.create_writer(writer_context(subtask=1, parallelism=2), None)
    writer.write(orders([1, 2]))
    writer.write(orders([3, 4]))
    writer.write(orders([5]))
    out, err = capsys.readouterr()
    assert out == ""
    assert err.splitlines() == ["dbg:2> shop.orders +I[1, c1, 0.25, 1]",
                                "dbg:2> shop.orders +I[2, c2, 0.5, 2]",
                                "dbg:2> shop.orders +I[3, c3, 0.75, 3]"]
    assert sink.create_committer().commit([{"x": 1}], commit_context()) == []


def test_identifier_without_parallelism_and_schema_changes(
        capsys: pytest.CaptureFixture[str]) -> None:
    writer = print_sink(print_identifier="out").create_writer(writer_context(), None)
    writer.write_schema_change(SchemaChange("add_column", "shop.users", SCHEMA, {"column": "vip"}))
    writer.write(ChangeBatch.of_rows(SCHEMA, [(3, "x", None, None)]))
    assert capsys.readouterr().out.splitlines() == [
        'out> shop.users ADD_COLUMN {"column": "vip"}', "out> shop.users +I[3, x, null, null]"]


def test_value_formats(capsys: pytest.CaptureFixture[str]) -> None:
    schema = TableSchema("t", (Column("d", T("DECIMAL(5,2)")), Column("ts", T("TIMESTAMP(3)")),
                               Column("b", T("BYTES")), Column("a", T("ARRAY<INT>"))))
    row = (Decimal("1.50"), dt.datetime(2024, 1, 2, 3, 4, 5), b"\x00\x01", [1, None])
    print_sink().create_writer(writer_context(), None).write(ChangeBatch.of_rows(schema, [row]))
    assert capsys.readouterr().out == "t +I[1.50, 2024-01-02T03:04:05, base64:AAE=, [1, null]]\n"


def test_blackhole_counts_and_commits_nothing() -> None:
    sink = BlackholeSink(BlackholeSinkConfig())
    writer = sink.create_writer(writer_context(), None)
    writer.write(orders(range(10)))
    writer.write(orders(range(5)))
    assert (writer.rows, writer.batches) == (15, 2)
    assert writer.prepare_commit(1) == []
    assert sink.create_committer().commit([], commit_context()) == []
    writer.close()


def test_entry_points() -> None:
    assert plugins.load("sink", "print") is PrintSink
    assert plugins.load("sink", "blackhole") is BlackholeSink
