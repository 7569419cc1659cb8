"""The transform operator on change batches: projection, filter, update images, keys, soft
deletes, metadata columns and schema changes."""
from __future__ import annotations

import datetime as dt

import numpy as np

import pytest

from runtime.batch import ChangeBatch
from runtime.errors import TerminalError
from runtime.schema import Column, SchemaChange, TableSchema
from runtime.transform.expr import ExprError
from runtime.transform.transform import TablePlan, TransformRule, Transformer
from runtime.types import T

S = TableSchema("shop.orders", (Column("id", T("BIGINT"), False), Column("qty", T("INT")),
                                Column("name", T("STRING"))), ("id",))


def run(rule: TransformRule, batch: ChangeBatch) -> ChangeBatch | None:
    return Transformer([rule]).apply(batch)


def test_projection_filter_and_computed_columns() -> None:
    rule = TransformRule("shop\\.orders", "id, qty * 10 AS q10, UPPER(name) AS uname",
                         "q10 > 15 AND name IS NOT NULL")
    b = ChangeBatch(S, "rcc", rows=[(1, 1, "a"), (2, 2, "b"), (3, 5, None)], ts_ms=[1, 2, 3])
    out = run(rule, b)
    assert out is not None
    assert out.schema.names == ("id", "q10", "uname")
    assert out.schema.primary_key == ("id",)
    assert str(out.schema.column("q10").type) == "BIGINT"
    assert (out.ops, out.rows(), out.ts_ms_list()) == ("c", [(2, 20, "B")], [2])


def test_nothing_left_is_none() -> None:
    b = ChangeBatch(S, "c", rows=[(1, 1, "a")])
    assert run(TransformRule(".*", filter="qty > 100"), b) is None


def test_update_images_stay_consistent_under_a_filter() -> None:
    rule = TransformRule(".*", "id, qty", "qty >= 10")
    before = [(1, 20, "x"), (2, 5, "x"), (3, 30, "x"), (4, 1, "x"), None, None]
    rows = [(1, 25, "x"), (2, 15, "x"), (3, 3, "x"), (4, 2, "x"), (5, 50, "x"), (6, 6, "x")]
    out = run(rule, ChangeBatch(S, "uuuuuu", rows=rows, before=before, ts_ms=list(range(6))))
    assert out is not None
    # stays in: update; enters: insert; leaves: delete of the before image; never in: gone;
    # no before image: after passes -> update, fails -> delete by key
    assert out.ops == "ucdud"
    assert out.rows() == [(1, 25), (2, 15), (3, 30), (5, 50), (6, 6)]
    assert out.before == [(1, 20), None, None, None, None]
    assert out.ts_ms_list() == [0, 1, 2, 4, 5]


def test_deletes_always_pass_the_filter() -> None:
    # a key-only delete (other columns NULL) can't be judged by the filter; a delete of a
    # key the target never got is a no-op, a delete lost leaves a row behind
    out = run(TransformRule(".*", filter="qty > 1 AND name IS NOT NULL"),
              ChangeBatch(S, "dcd", rows=[(1, 5, "a"), (2, 0, "b"), (3, None, None)]))
    assert out is not None and (out.ops, out.rows()) == ("dd", [(1, 5, "a"), (3, None, None)])


def test_soft_delete_and_event_type() -> None:
    rule = TransformRule(".*", "*, __data_event_type__ = '-D' AS deleted, __data_event_type__ AS t",
                         converter="SOFT_DELETE")
    out = run(rule, ChangeBatch(S, "cud", rows=[(1, 1, "a"), (2, 2, "b"), (3, 3, "c")]))
    assert out is not None
    assert out.ops == "cuu"
    assert [r[3:] for r in out.rows()] == [(False, "+I"), (False, "+U"), (True, "-D")]


def test_metadata_columns() -> None:
    rule = TransformRule(".*", "id, __database_name__ AS db, __table_name__ AS t, "
                               "__op_ts__ AS ts, __source_position__ AS pos")
    out = run(rule, ChangeBatch(S, "c", rows=[(1, 1, "a")], ts_ms=[86_400_000],
                                positions=[{"file": "b.1", "pos": 4}]))
    assert out is not None
    assert out.rows() == [(1, "shop", "orders", dt.datetime(1970, 1, 2, tzinfo=dt.timezone.utc),
                           '{"file": "b.1", "pos": 4}')]


def test_primary_key_override_and_a_dropped_key() -> None:
    rule = TransformRule(".*", "*, __table_name__ AS src", primary_keys=("id", "src"))
    out = run(rule, ChangeBatch(S, "c", rows=[(1, 1, "a")]))
    assert out is not None and out.schema.primary_key == ("id", "src")
    assert not out.schema.column("src").nullable
    with pytest.raises(ExprError, match="primary key column\\(s\\) \\['id'\\] are not in the "
                                        "projection") as exc:
        TablePlan(TransformRule(".*", "qty"), S)
    assert exc.value.part == "projection"
    with pytest.raises(ExprError) as exc:
        TablePlan(TransformRule(".*", "id", primary_keys=("nope",)), S)
    assert exc.value.part == "primary-keys"


def test_partition_keys_set_the_tables_partition_columns() -> None:
    rule = TransformRule(".*", "*, UPPER(name) AS region", partition_keys=("region",))
    out = run(rule, ChangeBatch(S, "c", rows=[(1, 1, "a")]))
    assert out is not None and out.schema.partition_keys == ("region",)
    assert TableSchema.from_dict(out.schema.to_dict()) == out.schema  # through checkpoints
    with pytest.raises(ExprError, match="\\['qty'\\] are not in the projection") as exc:
        TablePlan(TransformRule(".*", "id, name", partition_keys=("qty",)), S)
    assert exc.value.part == "partition-keys"


def test_errors_name_the_part_and_stop_the_pipeline_in_one_line() -> None:
    with pytest.raises(ExprError) as exc:
        TablePlan(TransformRule(".*", "id, qty", "name > 1"), S)
    assert exc.value.part == "filter"
    with pytest.raises(ExprError, match="give the expression a name"):
        TablePlan(TransformRule(".*", "id, qty + 1"), S)
    with pytest.raises(ExprError, match="not a condition"):
        TablePlan(TransformRule(".*", filter="qty + 1"), S)
    with pytest.raises(TerminalError, match="transform of shop.orders .*unknown column 'nme'"):
        run(TransformRule(".*", "id, UPPER(nme) AS n"), ChangeBatch(S, "c", rows=[(1, 1, "a")]))
    with pytest.raises(TerminalError, match="transform of shop.orders: CAST"):
        run(TransformRule(".*", "id, CAST(name AS INT) AS n"),
            ChangeBatch(S, "c", rows=[(1, 1, "a")]))


def test_first_matching_rule_applies_and_others_pass() -> None:
    tr = Transformer([TransformRule("shop\\.orders", "id"), TransformRule(".*", "id, qty")])
    b = ChangeBatch(S, "c", rows=[(1, 1, "a")])
    assert tr.apply(b).schema.names == ("id",)  # type: ignore[union-attr]
    other = TableSchema("shop.items", S.columns, ("id",))
    assert tr.apply(ChangeBatch(other, "c", rows=[(1, 1, "a")])).schema.names == ("id", "qty")  # type: ignore[union-attr]
    assert Transformer([TransformRule("x\\.y", "id")]).apply(b) is b


def test_schema_changes_seen_through_the_projection() -> None:
    tr = Transformer([TransformRule(".*", "id, qty")])
    created = tr.apply_schema_change(SchemaChange("create_table", S.table, S))
    assert created is not None and created.schema.names == ("id", "qty")
    wider = TableSchema(S.table, (*S.columns, Column("extra", T("INT"))), ("id",))
    assert tr.apply_schema_change(SchemaChange("add_column", S.table, wider,
                                               {"column": "extra"})) is None
    star = Transformer([TransformRule(".*", "*")])
    star.apply_schema_change(SchemaChange("create_table", S.table, S))
    added = star.apply_schema_change(SchemaChange("add_column", S.table, wider, {"column": "extra"}))
    assert added is not None and added.schema.names[-1] == "extra"


def test_filter_first_gives_what_the_general_path_gives() -> None:
    # a filter on source columns runs before the projection; a batch with (empty) before
    # images takes the general path: both must agree, event by event
    import random

    rnd = random.Random(7)
    n = 500
    rows = [(i, rnd.choice([None, *range(-3, 10)]), rnd.choice([None, "a", "b", "cc"]))
            for i in range(n)]
    ops = "".join(rnd.choice("rcud") for _ in range(n))
    rule = TransformRule(".*", "id, qty * 2 AS q2, UPPER(name) AS u, __data_event_type__ AS t",
                         "qty > 2 AND name <> 'b' AND __data_event_type__ <> '+I'")
    plan = TablePlan(rule, S)
    assert plan._filter_first  # noqa: SLF001 - the path under test
    fast = plan.apply(ChangeBatch(S, ops, rows=rows, ts_ms=list(range(n)),
                                  versions=list(range(n))))
    slow = plan.apply(ChangeBatch(S, ops, rows=rows, ts_ms=list(range(n)), before=[None] * n,
                                  versions=list(range(n))))
    assert fast is not None and slow is not None
    assert fast.ops == slow.ops and fast.rows() == slow.rows()
    assert fast.ts_ms_list() == slow.ts_ms_list() and list(fast.versions) == list(slow.versions)
    assert 0 < len(fast) < n and set(fast.ops) == {"u", "d"}  # +I filtered out


@pytest.mark.parametrize("ops", ["cccccccc", "rrrrrrrr", "cucdcudc", "dddddddd"])
def test_the_filter_first_path_gives_what_the_general_path_gives(ops: str) -> None:
    """The fast path (filter on source columns, no before images) against the general one,
    with event times, versions and positions riding along."""
    rows = [(i, i % 5 if i % 3 else None, f"n{i}") for i in range(len(ops))]
    batch = ChangeBatch(S, ops, rows=rows, ts_ms=np.arange(len(ops), dtype=np.int64) * 10,
                        versions=np.arange(len(ops), dtype=np.int64) + 100,
                        positions=[{"pos": i} for i in range(len(ops))])
    plan = TablePlan(TransformRule(".*", "id, qty * 2 AS q2, __source_position__ AS p",
                                   "qty > 1"), S)
    assert plan._filter_first
    fast = plan.apply(batch)
    plan._filter_first = False
    slow = plan.apply(batch)
    if slow is None:
        assert fast is None
        return
    assert fast is not None
    assert (fast.ops, fast.rows(), list(fast.ts_ms_array().to_pylist()), list(fast.versions),
            fast.positions) == (slow.ops, slow.rows(), list(slow.ts_ms_array().to_pylist()),
                                list(slow.versions), slow.positions)
