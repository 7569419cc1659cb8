"""Table ids keep their parts: names with dots and quotes come back apart."""
from __future__ import annotations

import pytest

from formats.message.debezium import _history_table_id
from runtime.schema import split_table_id, table_id


@pytest.mark.parametrize("db,name", [
    ("shop", "orders"), ("shop", "my.orders"), ("a.b", 'c"d'), ("", "x.y"), ("", "plain"),
    ("s", ""), ("s", " padded "), ("..", ".."), ('"', '""'), ("db", "semi;colon and space"),
])
def test_round_trip(db, name):
    assert split_table_id(table_id(db, name)) == (db, name)


def test_ordinary_ids_are_unchanged():
    assert table_id("shop", "orders") == "shop.orders"
    assert split_table_id("shop.orders") == ("shop", "orders")
    assert table_id("shop", "my.orders") == 'shop."my.orders"'
    assert table_id("shop.eu", "orders") == '"shop.eu".orders'


@pytest.mark.parametrize("bad", ['"open', 'a."b"c', 'a"b.c', '"a"."b"."c"'])
def test_malformed_ids_are_refused(bad):
    with pytest.raises(ValueError, match="table id"):
        split_table_id(bad)


def test_debezium_history_ids():
    assert _history_table_id('"shop"."my.orders"') == table_id("shop", "my.orders")
    assert _history_table_id("shop.orders") == "shop.orders"
    assert _history_table_id("`shop`.`orders`") == "shop.orders"
