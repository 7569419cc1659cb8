"""``[pipeline] schema-change-behavior``: what schema changes reach the sink (Flink CDC's
modes), and how the data of a table follows the schema the sink keeps."""
from __future__ import annotations

from typing import Any

import pytest

from runtime.batch import ChangeBatch
from runtime.errors import TerminalError
from runtime.schema import Column, SchemaChange, TableSchema
from runtime.sink import Committable, Committer, Sink, SinkWriter, WriterContext
from runtime.transform.operator import TransformingSink
from runtime.types import T

ID = Column("id", T("BIGINT"), False)
A = Column("a", T("INT"))
V1 = TableSchema("db.t", (ID, A), ("id",))


class _Writer(SinkWriter):
    def __init__(self, seen: list[Any], refuse: bool):
        self.seen, self.refuse = seen, refuse

    def write(self, batch: ChangeBatch) -> None:
        self.seen.append(("rows", batch.schema.names, batch.rows()))

    def write_schema_change(self, change: SchemaChange) -> None:
        if self.refuse and change.kind != "create_table":
            raise TerminalError("the database refuses it")
        self.seen.append((change.kind, change.details.get("column"),
                          change.schema.names if change.schema else None))

    def prepare_commit(self, checkpoint_id: int) -> list[Committable]:
        return []


class _Sink(Sink):
    def __init__(self, refuse: bool = False) -> None:
        self.seen: list[Any] = []
        self.refuse = refuse

    def create_writer(self, context: WriterContext, state: dict[str, Any] | None) -> SinkWriter:
        return _Writer(self.seen, self.refuse)

    def create_committer(self) -> Committer:
        raise NotImplementedError


CTX = WriterContext("p", 0, 1, 0, "/tmp", None, 60.0)  # type: ignore[arg-type]


def writer(behavior: str, refuse: bool = False, state: dict | None = None):
    inner = _Sink(refuse)
    sink = TransformingSink(inner, [], [], behavior)
    return sink, sink.create_writer(CTX, state), inner.seen


def feed(w: SinkWriter) -> None:
    """create; a row; add column b; a row; drop column a; a row; rename b -> c; a row;
    a to BIGINT is gone already: b's type change INT -> BIGINT first; truncate."""
    v2 = TableSchema("db.t", (ID, A, Column("b", T("INT"))), ("id",))
    v3 = TableSchema("db.t", (ID, Column("b", T("INT"))), ("id",))
    v4 = TableSchema("db.t", (ID, Column("b", T("BIGINT"))), ("id",))
    v5 = TableSchema("db.t", (ID, Column("c", T("BIGINT"))), ("id",))
    w.write_schema_change(SchemaChange("create_table", "db.t", V1))
    w.write(ChangeBatch(V1, "c", rows=[(1, 10)]))
    w.write_schema_change(SchemaChange("add_column", "db.t", v2, {"column": "b"}))
    w.write(ChangeBatch(v2, "c", rows=[(2, 20, 200)]))
    w.write_schema_change(SchemaChange("drop_column", "db.t", v3, {"column": "a"}))
    w.write(ChangeBatch(v3, "c", rows=[(3, 300)]))
    w.write_schema_change(SchemaChange("alter_column_type", "db.t", v4, {"column": "b"}))
    w.write(ChangeBatch(v4, "c", rows=[(4, 2**40)]))
    w.write_schema_change(SchemaChange("rename_column", "db.t", v5, {"old": "b", "new": "c"}))
    w.write(ChangeBatch(v5, "c", rows=[(5, 5)]))
    w.write_schema_change(SchemaChange("truncate_table", "db.t", v5))


def test_evolve_passes_everything_as_it_is() -> None:
    _, w, seen = writer("evolve")
    feed(w)
    assert [s[0] for s in seen] == ["create_table", "rows", "add_column", "rows", "drop_column",
                                    "rows", "alter_column_type", "rows", "rename_column",
                                    "rows", "truncate_table"]


def test_lenient_loses_nothing() -> None:
    _, w, seen = writer("lenient")
    feed(w)
    assert seen == [
        ("create_table", None, ("id", "a")),
        ("rows", ("id", "a"), [(1, 10)]),
        ("add_column", "b", ("id", "a", "b")),
        ("rows", ("id", "a", "b"), [(2, 20, 200)]),
        # drop: the column stays, NULL from now on
        ("rows", ("id", "a", "b"), [(3, None, 300)]),
        ("alter_column_type", "b", ("id", "a", "b")),  # INT -> BIGINT widens
        ("rows", ("id", "a", "b"), [(4, None, 2**40)]),
        ("add_column", "c", ("id", "a", "b", "c")),  # a rename adds the new name
        ("rows", ("id", "a", "b", "c"), [(5, None, None, 5)]),
        # the truncate is not passed on
    ]


def test_lenient_state_survives_a_restore() -> None:
    sink, w, seen = writer("lenient")
    feed(w)
    state = w.snapshot_state(1)
    w2 = sink.create_writer(CTX, state)
    v3 = TableSchema("db.t", (ID, Column("b", T("INT"))), ("id",))
    w2.write(ChangeBatch(v3, "c", rows=[(9, 9)]))  # an old schema after the restore
    assert seen[-1] == ("rows", ("id", "a", "b", "c"), [(9, None, 9, None)])


def test_ignore_keeps_the_first_schema() -> None:
    _, w, seen = writer("ignore")
    feed(w)
    assert [s for s in seen if s[0] != "rows"] == [("create_table", None, ("id", "a"))]
    assert [s[2] for s in seen if s[0] == "rows"] == [[(1, 10)], [(2, 20)], [(3, None)],
                                                      [(4, None)], [(5, None)]]


def test_exception_stops_at_the_first_change() -> None:
    _, w, seen = writer("exception")
    with pytest.raises(TerminalError, match="add_column of db.t: the pipeline's "
                                            "schema-change-behavior is \"exception\""):
        feed(w)
    assert [s[0] for s in seen] == ["create_table", "rows"]


def test_try_evolve_goes_on_when_the_sink_refuses(caplog: Any) -> None:
    _, w, seen = writer("try-evolve", refuse=True)
    w.write_schema_change(SchemaChange("create_table", "db.t", V1))
    v2 = TableSchema("db.t", (ID, A, Column("b", T("INT"))), ("id",))
    w.write_schema_change(SchemaChange("add_column", "db.t", v2, {"column": "b"}))
    assert "add_column of db.t not applied by the sink" in caplog.text
    _, w, _ = writer("evolve", refuse=True)
    with pytest.raises(TerminalError):
        w.write_schema_change(SchemaChange("add_column", "db.t", v2, {"column": "b"}))
