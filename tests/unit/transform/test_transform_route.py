"""The route operator: target names, merged schemas of sharded tables, their state."""
from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from runtime.batch import ChangeBatch
from runtime.errors import TerminalError
from runtime.executor.failure import operator_of
from runtime.schema import Column, SchemaChange, TableSchema
from runtime.sink import Committable, Committer, Sink, SinkWriter, WriterContext
from runtime.transform.operator import TransformingSink
from runtime.transform.merged import widen
from runtime.transform.route import RouteRule, Router
from runtime.transform.transform import TransformRule
from runtime.types import T


def test_targets_with_groups_and_replace_symbol() -> None:
    assert RouteRule("shop\\.order_\\d+", "dw.orders").target("shop.order_12") == "dw.orders"
    assert RouteRule("(\\w+)\\.order_(\\d+)", "$1_all.o$2").target("shop.order_7") == "shop_all.o7"
    assert RouteRule("shop\\..*", "ods.ods_<>", "<>").target("shop.items") == "ods.ods_items"
    assert RouteRule("shop\\.order_\\d+", "x.y").target("shop.order_1x") is None
    with pytest.raises(ValueError, match="\\$2 but source-table has 1"):
        RouteRule("(a)", "$2").check()


@pytest.mark.parametrize("a, b, want", [
    ("INT", "BIGINT", "BIGINT"), ("TINYINT", "SMALLINT", "SMALLINT"),
    ("INT", "DECIMAL(10,2)", "DECIMAL(12,2)"), ("DECIMAL(5,3)", "DECIMAL(10,1)", "DECIMAL(12,3)"),
    ("FLOAT", "DOUBLE", "DOUBLE"), ("INT", "DOUBLE", "DOUBLE"), ("INT", "FLOAT", "DOUBLE"),
    ("BIGINT", "DOUBLE", None), ("BIGINT", "FLOAT", None),  # 53 bits do not hold 64
    ("VARCHAR(10)", "VARCHAR(20)", "VARCHAR(20)"), ("CHAR(3)", "VARCHAR(9)", "STRING"),
    ("TIMESTAMP(3)", "TIMESTAMP(6)", "TIMESTAMP(6)"), ("BINARY(4)", "BYTES", "BYTES"),
    ("DATE", "INT", None), ("BOOLEAN", "STRING", None),
])
def test_widen(a: str, b: str, want: str | None) -> None:
    got = widen(T(a), T(b))
    assert (str(got) if got else None) == want
    got2 = widen(T(b), T(a))
    assert (str(got2) if got2 else None) == want


def shard(i: int, cols: tuple[Column, ...]) -> TableSchema:
    return TableSchema(f"shop.order_{i}", cols, ("id",))


ID = Column("id", T("BIGINT"), False)


def test_shards_merge_into_one_schema_and_rows_conform() -> None:
    router = Router([RouteRule("shop\\.order_\\d+", "dw.orders")])
    s0 = shard(0, (ID, Column("qty", T("INT"))))
    s1 = shard(1, (ID, Column("qty", T("BIGINT")), Column("note", T("STRING"))))
    changes, out = router.apply(ChangeBatch(s0, "c", rows=[(1, 5)]))
    assert [c.kind for c in changes] == ["create_table"]
    assert out.table == "dw.orders" and out.rows() == [(1, 5)]
    changes, out = router.apply(ChangeBatch(s1, "c", rows=[(2, 2**40, "n")]))
    assert [(c.kind, c.details["column"]) for c in changes] == [
        ("alter_column_type", "qty"), ("add_column", "note")]
    assert str(changes[0].schema.column("qty").type) == "BIGINT"
    assert "note" not in changes[0].schema.names and changes[1].schema.names[-1] == "note"
    assert out.rows() == [(2, 2**40, "n")]
    changes, out = router.apply(ChangeBatch(s0, "u", rows=[(1, 6)]))
    assert changes == [] and out.schema.names == ("id", "qty", "note")
    assert out.rows() == [(1, 6, None)]  # a column the shard lacks is NULL


def test_state_rebuilds_the_merged_schema_whatever_comes_first() -> None:
    rules = [RouteRule("shop\\.order_\\d+", "dw.orders")]
    router = Router(rules)
    router.apply(ChangeBatch(shard(0, (ID, Column("a", T("INT")))), "c", rows=[(1, 1)]))
    router.apply(ChangeBatch(shard(1, (ID, Column("b", T("DECIMAL(5,2)")))), "c",
                             rows=[(2, Decimal("1.5"))]))
    state = router.snapshot_state()
    restored = Router(rules, state)
    # after a restore, shard 1 comes first: the target keeps its merged schema, no new DDL
    changes, out = restored.apply(ChangeBatch(shard(1, (ID, Column("b", T("DECIMAL(5,2)")))),
                                              "c", rows=[(3, Decimal("2.5"))]))
    assert changes == [] and out.schema.names == ("id", "a", "b")
    assert restored.snapshot_state() == state
    merged = Router.merge_states([state, None, Router(rules).snapshot_state()])
    assert merged == state


def test_keys_must_agree_and_types_must_widen() -> None:
    router = Router([RouteRule("shop\\.order_\\d+", "dw.orders")], behavior="evolve")
    router.apply(ChangeBatch(shard(0, (ID, Column("a", T("INT")))), "c", rows=[(1, 1)]))
    other_key = TableSchema("shop.order_1", (ID, Column("a", T("INT"), False)), ("id", "a"))
    with pytest.raises(TerminalError, match="shop.order_1 has primary key \\['id', 'a'\\]"):
        router.apply(ChangeBatch(other_key, "c", rows=[(1, 1)]))
    with pytest.raises(TerminalError, match="column a is INT .* and DATE in shop.order_2"):
        router.apply(ChangeBatch(shard(2, (ID, Column("a", T("DATE")))), "c", rows=[(1, None)]))


def test_lenient_gives_a_shard_of_another_type_a_side_column_the_others_share() -> None:
    router = Router([RouteRule("shop\\.order_\\d+", "dw.orders")])  # lenient: the default
    router.apply(ChangeBatch(shard(0, (ID, Column("a", T("INT")))), "c", rows=[(1, 1)]))
    changes, out = router.apply(ChangeBatch(shard(1, (ID, Column("a", T("VARCHAR(3)")))), "c",
                                            rows=[(2, "x")]))
    assert [(c.kind, c.details["column"]) for c in changes] == [("add_column", "a_varchar")]
    assert out.schema.names == ("id", "a", "a_varchar") and out.rows() == [(2, None, "x")]
    # a third shard of a wider text type shares the side column (widened), not a new one
    changes, out = router.apply(ChangeBatch(shard(2, (ID, Column("a", T("VARCHAR(9)")))), "c",
                                            rows=[(3, "yyyyyyyyy")]))
    assert [(c.kind, c.details["column"]) for c in changes] == [
        ("alter_column_type", "a_varchar")]
    assert out.schema.column("a_varchar").type == T("VARCHAR(9)")
    assert out.rows() == [(3, None, "yyyyyyyyy")]


def test_truncate_of_one_shard_is_not_passed_on() -> None:
    router = Router([RouteRule("shop\\.order_\\d+", "dw.orders")])
    for i in range(2):
        router.apply(ChangeBatch(shard(i, (ID,)), "c", rows=[(i,)]))
    assert router.apply_schema_change(SchemaChange("truncate_table", "shop.order_0", None)) == []
    solo = Router([RouteRule("shop\\.items", "dw.items")])
    out = solo.apply_schema_change(SchemaChange("truncate_table", "shop.items", None))
    assert [(c.kind, c.table) for c in out] == [("truncate_table", "dw.items")]


# -- chained in front of a sink ------------------------------------------------------------
class _Writer(SinkWriter):
    def __init__(self, seen: list[Any], state: dict | None):
        self.seen, self.state = seen, state

    def write(self, batch: ChangeBatch) -> None:
        self.seen.append((batch.table, batch.ops, batch.rows()))

    def write_schema_change(self, change: SchemaChange) -> None:
        self.seen.append((change.kind, change.table))

    def prepare_commit(self, checkpoint_id: int) -> list[Committable]:
        return []

    def snapshot_state(self, checkpoint_id: int) -> dict[str, Any] | None:
        return {"mine": checkpoint_id}


class _Sink(Sink):
    def __init__(self) -> None:
        self.seen: list[Any] = []
        self.states: list[Any] = []

    def create_writer(self, context: WriterContext, state: dict[str, Any] | None) -> SinkWriter:
        self.states.append(state)
        return _Writer(self.seen, state)

    def create_committer(self) -> Committer:
        raise NotImplementedError


def test_writer_chain_transforms_routes_and_keeps_both_states() -> None:
    inner = _Sink()
    sink = TransformingSink(inner, [TransformRule(".*", "id, qty", "qty > 1")],
                            [RouteRule("shop\\.order_\\d+", "dw.orders")])
    ctx = WriterContext("p", 0, 1, 0, "/tmp", None, 60.0)  # type: ignore[arg-type]
    w = sink.create_writer(ctx, None)
    s = shard(0, (ID, Column("qty", T("INT")), Column("x", T("STRING"))))
    w.write(ChangeBatch(s, "cc", rows=[(1, 1, "a"), (2, 2, "b")]))
    assert inner.seen == [("create_table", "dw.orders"), ("dw.orders", "c", [(2, 2)])]
    state = w.snapshot_state(7)
    assert state is not None and state["inner"] == {"mine": 7}
    assert list(state["routes"]) == ["dw.orders"]
    w2 = sink.create_writer(ctx, state)
    assert inner.states[-1] == {"mine": 7}
    w2.write(ChangeBatch(s, "c", rows=[(3, 3, "c")]))
    assert inner.seen[-1] == ("dw.orders", "c", [(3, 3)])  # no second create_table
    assert operator_of(sink) == operator_of(inner)  # errors name the sink, not the wrapper


def test_the_wrapped_sink_is_plain_data_for_executors_that_ship_it() -> None:
    import pickle

    rule = TransformRule(".*", "id, UPPER(s) AS u", "id > 1")
    assert rule.items and rule.filter_node is not None  # parsed (cached) before shipping
    sink = TransformingSink(_Sink(), [rule], [RouteRule("a\\.(.*)", "b.$1")])
    copy = pickle.loads(pickle.dumps(sink))
    assert copy.routes[0].target("a.x") == "b.x"
    assert copy.transforms[0].filter == "id > 1"


def test_rescale_gives_every_writer_all_merged_schemas() -> None:
    from runtime.errors import ConfigError
    from runtime.rescale import writer_states_for

    rules = [RouteRule("shop\\.order_\\d+", "dw.orders"), RouteRule("shop\\.item_\\d+", "dw.items")]
    a, b = Router(rules), Router(rules)
    a.apply(ChangeBatch(shard(0, (ID, Column("x", T("INT")))), "c", rows=[(1, 1)]))
    b.apply(ChangeBatch(TableSchema("shop.item_1", (ID,), ("id",)), "c", rows=[(1,)]))
    b.apply(ChangeBatch(shard(1, (ID, Column("y", T("INT")))), "c", rows=[(1, 1)]))
    sink = TransformingSink(_Sink(), [], rules)
    states = [{"inner": None, "routes": a.snapshot_state()},
              {"inner": None, "routes": b.snapshot_state()}]
    out = writer_states_for(sink, states, 3)
    assert len(out) == 3 and all(s == out[0] for s in out)
    merged = Router(rules, out[0]["routes"])  # type: ignore[index]
    assert merged._targets["dw.orders"].schema.names == ("id", "x", "y")  # noqa: SLF001
    assert "dw.items" in merged._targets  # noqa: SLF001
    # the sink's own state still can't be redistributed by a sink that can't
    with pytest.raises(ConfigError, match="can't redistribute"):
        writer_states_for(sink, [{"inner": {"held": 1}, "routes": {}}, None], 3)
