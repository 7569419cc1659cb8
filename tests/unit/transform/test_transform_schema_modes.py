"""``[pipeline] schema-change-behavior``: what schema changes reach the sink (Flink CDC's
modes), and how the data of a table follows the schema the sink keeps."""
from __future__ import annotations

from typing import Any

import pytest

from runtime.batch import ChangeBatch
from runtime.errors import TerminalError
from runtime.schema import Column, SchemaChange, TableSchema
from runtime.sink import Committable, Committer, Sink, SinkWriter, WriterContext
from runtime.transform.changes import TAGS, SchemaChangeFilter, expand
from runtime.transform.operator import TransformingSink
from runtime.transform.route import Router
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


# -- the sink's include-schema-changes / exclude-schema-changes ---------------------------------
def filtered(behavior: str, include: tuple[str, ...] | None = None,
             exclude: tuple[str, ...] | None = None):
    inner = _Sink()
    sink = TransformingSink(inner, [], [], behavior, SchemaChangeFilter(include, exclude))
    return sink.create_writer(CTX, None), inner.seen


def test_change_tags_expand_families_and_name_the_valid_ones() -> None:
    assert expand(["drop"]) == {"drop.column", "drop.table"}
    assert expand(["*"]) == set(TAGS.values())
    with pytest.raises(ValueError, match="unknown schema change type 'drop.colum'; valid: "
                                         "create.table, add.column"):
        expand(["drop.colum"])
    f = SchemaChangeFilter(include=("column",), exclude=("drop",))
    assert f.applied("evolve") == {"add_column", "rename_column", "alter_column_type"}
    assert SchemaChangeFilter().applied("lenient") == set(TAGS) - {"drop_table",
                                                                   "truncate_table"}
    assert SchemaChangeFilter(exclude=()).applied("lenient") == set(TAGS)


def test_evolve_with_drop_column_and_truncate_excluded_keeps_the_column_and_rows() -> None:
    w, seen = filtered("evolve", exclude=("drop.column", "truncate.table"))
    feed(w)
    assert seen == [
        ("create_table", None, ("id", "a")),
        ("rows", ("id", "a"), [(1, 10)]),
        ("add_column", "b", ("id", "a", "b")),
        ("rows", ("id", "a", "b"), [(2, 20, 200)]),
        ("rows", ("id", "a", "b"), [(3, None, 300)]),  # the drop skipped: a stays, NULL
        ("alter_column_type", "b", ("id", "a", "b")),
        ("rows", ("id", "a", "b"), [(4, None, 2**40)]),
        ("rename_column", None, ("id", "a", "c")),  # evolve: renamed on the sink's schema
        ("rows", ("id", "a", "c"), [(5, None, 5)]),
        # the truncate skipped
    ]


def test_evolve_passes_everything_when_nothing_is_excluded() -> None:
    w, seen = filtered("evolve", exclude=())
    feed(w)
    assert [s[0] for s in seen][-1] == "truncate_table" and len(seen) == 11
    assert isinstance(w.router, Router) and not w.router.active  # no work at all


def test_a_column_the_sink_skips_adding_stays_out_of_its_rows() -> None:
    w, seen = filtered("evolve", exclude=("add.column",))
    v2 = TableSchema("db.t", (ID, A, Column("b", T("INT"))), ("id",))
    w.write_schema_change(SchemaChange("create_table", "db.t", V1))
    w.write_schema_change(SchemaChange("add_column", "db.t", v2, {"column": "b"}))
    w.write(ChangeBatch(v2, "c", rows=[(2, 20, 200)]))
    assert seen == [("create_table", None, ("id", "a")), ("rows", ("id", "a"), [(2, 20)])]


def test_a_type_change_the_sink_skips_fails_on_a_value_that_does_not_fit() -> None:
    w, seen = filtered("evolve", exclude=("alter.column.type",))
    v2 = TableSchema("db.t", (ID, Column("a", T("BIGINT"))), ("id",))
    w.write_schema_change(SchemaChange("create_table", "db.t", V1))
    w.write_schema_change(SchemaChange("alter_column_type", "db.t", v2, {"column": "a"}))
    w.write(ChangeBatch(v2, "c", rows=[(1, 7)]))
    assert seen[-1] == ("rows", ("id", "a"), [(1, 7)])  # cast to the INT the sink keeps
    with pytest.raises(TerminalError, match="db.t: column a: a value of type BIGINT does not "
                                            "fit the type INT the sink's table db.t keeps"):
        w.write(ChangeBatch(v2, "c", rows=[(2, 2**40)]))


def test_lenient_with_an_exclude_list_passes_truncates() -> None:
    """Setting exclude-schema-changes replaces lenient's default (drop/truncate table)."""
    w, seen = filtered("lenient", exclude=("drop.table",))
    feed(w)
    assert seen[-1] == ("truncate_table", None, ("id", "a", "b", "c"))
    w, seen = filtered("lenient", include=("create.table",))
    feed(w)
    assert [s for s in seen if s[0] != "rows"] == [("create_table", None, ("id", "a"))]
    assert seen[-1] == ("rows", ("id", "a"), [(5, None)])


def test_sink_schema_change_options_are_validated_in_one_place(tmp_path: Any) -> None:
    from hub.config import load_pipeline
    from hub.errors import ConfigErrors

    path = tmp_path / "p.toml"
    head = '[pipeline]\nname = "p"\n[source]\ntype = "datagen"\n[sink]\ntype = "blackhole"\n'
    path.write_text(head + 'exclude-schema-changes = ["drop.colum"]\n')
    with pytest.raises(ConfigErrors) as info:
        load_pipeline(str(path))
    assert str(info.value).splitlines()[0] == (
        f"{path}:7: sink.exclude-schema-changes: unknown schema change type 'drop.colum'; "
        "valid: create.table, add.column, drop.column, rename.column, alter.column.type, "
        "truncate.table, drop.table, *, all, add, alter, create, drop, rename, truncate, "
        "column, table")
    path.write_text(head + 'include-schema-changes = ["column"]\n')
    spec = load_pipeline(str(path))
    assert spec.schema_change_behavior == "lenient"  # the default
    assert spec.sink_schema_changes == SchemaChangeFilter(include=("column",))


# -- lenient type changes: widened in place, else a side column ---------------------------------
def retype(w: SinkWriter, *types: str, extra: tuple[Column, ...] = ()) -> None:
    """create db.t (id, a INT, *extra), then a's type changes to each of ``types`` in turn,
    one row after each (a = 10 * step)."""
    w.write_schema_change(SchemaChange("create_table", "db.t",
                                       TableSchema("db.t", (ID, A, *extra), ("id",))))
    for step, t in enumerate(types, 1):
        v = TableSchema("db.t", (ID, Column("a", T(t)), *extra), ("id",))
        w.write_schema_change(SchemaChange("alter_column_type", "db.t", v, {"column": "a"}))
        value: Any = {"DATE": __import__("datetime").date(2026, 1, step),
                      "VARCHAR(5)": f"v{step}"}.get(t, 10 * step)
        w.write(ChangeBatch(v, "c", rows=[(step, value, *[None] * len(extra))]))


def test_lenient_widens_in_place_where_a_type_holds_both() -> None:
    _, w, seen = writer("lenient")
    retype(w, "BIGINT", "DECIMAL(20,2)")  # INT -> BIGINT -> DECIMAL(20,2): DECIMAL(21,2)
    assert [s for s in seen if s[0] != "rows"] == [
        ("create_table", None, ("id", "a")), ("alter_column_type", "a", ("id", "a")),
        ("alter_column_type", "a", ("id", "a"))]
    assert seen[-1][1:] == (("id", "a"), [(2, 20)])


def test_lenient_widens_a_decimal_whose_scale_is_lowered() -> None:
    # DECIMAL(10,2) -> DECIMAL(10,0): DECIMAL(12,2) holds the old cents and the new 10 digits
    _, w, seen = writer("lenient")
    v1 = TableSchema("db.t", (ID, Column("a", T("DECIMAL(10,2)"))), ("id",))
    v2 = TableSchema("db.t", (ID, Column("a", T("DECIMAL(10,0)"))), ("id",))
    w.write_schema_change(SchemaChange("create_table", "db.t", v1))
    w.write_schema_change(SchemaChange("alter_column_type", "db.t", v2, {"column": "a"}))
    w.write(ChangeBatch(v2, "c", rows=[(1, 9_999_999_999)]))
    assert seen[1] == ("alter_column_type", "a", ("id", "a"))
    assert seen[2] == ("rows", ("id", "a"), [(1, 9_999_999_999)])
    kept = TableSchema.from_dict(w.snapshot_state(1)["routes"]["db.t"]["schema"])
    assert kept.column("a").type == T("DECIMAL(12,2)")


def test_lenient_keeps_a_narrowed_column_as_it_is() -> None:
    # BIGINT -> INT: the BIGINT column holds every INT: nothing to change, nothing lost
    _, w, seen = writer("lenient")
    retype(w, "BIGINT", "INT")
    assert [s[0] for s in seen] == ["create_table", "alter_column_type", "rows", "rows"]
    assert seen[-1][1:] == (("id", "a"), [(2, 20)])


def test_lenient_adds_a_side_column_where_no_type_holds_both() -> None:
    sink, w, seen = writer("lenient")
    retype(w, "DATE", "VARCHAR(5)")  # INT -> DATE -> VARCHAR(5): neither widens the one before
    import datetime as dt
    assert seen == [
        ("create_table", None, ("id", "a")),
        ("add_column", "a_date", ("id", "a", "a_date")),
        ("rows", ("id", "a", "a_date"), [(1, None, dt.date(2026, 1, 1))]),
        ("add_column", "a_varchar", ("id", "a", "a_date", "a_varchar")),
        ("rows", ("id", "a", "a_date", "a_varchar"), [(2, None, None, "v2")]),
    ]
    state = w.snapshot_state(1)
    kept = state["routes"]["db.t"]
    assert kept["columns"] == {"db.t": {"a": "a_varchar"}}
    assert [c["nullable"] for c in kept["schema"]["columns"][1:]] == [True, True, True]
    # after a restore the values of a still go to the side column
    w2 = sink.create_writer(CTX, state)
    w2.write(ChangeBatch(TableSchema("db.t", (ID, Column("a", T("VARCHAR(5)"))), ("id",)), "c",
                         rows=[(3, "v3")]))
    assert seen[-1] == ("rows", ("id", "a", "a_date", "a_varchar"), [(3, None, None, "v3")])
    assert Router.merge_states([state["routes"], None]) == state["routes"]  # other parallelism
    # the source adds a column named like a side column: its values get a column of their own
    v = TableSchema("db.t", (ID, Column("a", T("VARCHAR(5)")), Column("a_date", T("DATE"))),
                    ("id",))
    w2.write_schema_change(SchemaChange("add_column", "db.t", v, {"column": "a_date"}))
    w2.write(ChangeBatch(v, "c", rows=[(4, "v4", dt.date(2026, 2, 2))]))
    assert seen[-2:] == [
        ("add_column", "a_date_2", ("id", "a", "a_date", "a_varchar", "a_date_2")),
        ("rows", ("id", "a", "a_date", "a_varchar", "a_date_2"),
         [(4, None, None, "v4", dt.date(2026, 2, 2))])]


def test_lenient_side_column_of_a_lossy_widening() -> None:
    # BIGINT -> DOUBLE: a DOUBLE would round large BIGINTs, so no widening in place
    _, w, seen = writer("lenient")
    retype(w, "BIGINT", "DOUBLE")
    assert [(s[0], s[1]) for s in seen if s[0] != "rows"][-1] == ("add_column", "a_double")


def test_lenient_side_column_name_is_numbered_when_taken() -> None:
    _, w, seen = writer("lenient")
    # the table has a column a_date of its own already
    retype(w, "DATE", extra=(Column("a_date", T("INT")),))
    assert ("add_column", "a_date_2", ("id", "a", "a_date", "a_date_2")) in seen
    assert seen[-1][2] == [(1, None, None, __import__("datetime").date(2026, 1, 1))]


def test_lenient_side_column_needs_the_sink_to_add_columns() -> None:
    w, _ = filtered("lenient", exclude=("add.column",))
    with pytest.raises(TerminalError, match="db.t: column a changed from INT to DATE: no type "
                                            "holds both, .* skip \\(add.column\\)"):
        retype(w, "DATE")


def test_lenient_stops_on_a_key_column_no_type_holds_with_the_old_one() -> None:
    _, w, _ = writer("lenient")
    w.write_schema_change(SchemaChange("create_table", "db.t", V1))
    v2 = TableSchema("db.t", (Column("id", T("DATE"), False), A), ("id",))
    with pytest.raises(TerminalError, match="db.t: key column id changed from BIGINT to DATE: "
                                            "no type holds both, .* keeps a table's key"):
        w.write_schema_change(SchemaChange("alter_column_type", "db.t", v2, {"column": "id"}))
