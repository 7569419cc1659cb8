"""Chunks cut by arithmetic (Flink CDC's evenly distributed chunks): a table whose primary key
is one integer column filling at least half of its range is cut into ``[a, a + chunk-size)``
ranges from its smallest key, without an index scan per chunk; other tables keep the scan
(exactly chunk-size rows each).  Either way the chunks tile the key space."""
from __future__ import annotations

import pytest

from sources.mysql.catalog import describe
from sources.mysql.enumerator import MySqlEnumerator
from sources.mysql.snapshot import even_chunk_start, key_span
from tests.integration.mysql.helpers import new_database, source_config
from tests.integration.mysql.test_mysql_enumerator_async import HeldCalls

pytestmark = [pytest.mark.integration, pytest.mark.mysql]


def _make(server, db: str, name: str, ddl: str, ids: list[int]) -> str:
    conn = server.connect()
    with conn.cursor() as cur:
        cur.execute(f"CREATE TABLE {db}.{name} {ddl}")
        cur.executemany(f"INSERT INTO {db}.{name} (id) VALUES (%s)", [(i,) for i in ids])
        cur.execute(f"ANALYZE TABLE {db}.{name}")  # the row estimate, as a table has it
    conn.close()
    return f"{db}.{name}"


def _span(server, db: str, table: str) -> tuple[int, int] | None:
    conn = server.connect()
    try:
        return key_span(conn, describe(conn, table, {}))
    finally:
        conn.close()


# 1000..1099 without the multiples of 7: dense enough (86%), not contiguous
DENSE = [i for i in range(1000, 1100) if i % 7]


def test_key_span_only_for_a_dense_single_integer_primary_key(mysql_server):
    db = new_database(mysql_server)
    dense = _make(mysql_server, db, "dense", "(id INT PRIMARY KEY, v INT)", DENSE)
    sparse = _make(mysql_server, db, "sparse", "(id BIGINT PRIMARY KEY)", list(range(0, 5000, 50)))
    text = _make(mysql_server, db, "text", "(id VARCHAR(10) PRIMARY KEY)", DENSE)
    both = _make(mysql_server, db, "both", "(id INT, k INT DEFAULT 1, PRIMARY KEY (id, k))",
                 DENSE)
    empty = _make(mysql_server, db, "empty", "(id INT PRIMARY KEY)", [])
    assert _span(mysql_server, db, dense) == (1000, 1098)
    assert [_span(mysql_server, db, t) for t in (sparse, text, both, empty)] == [None] * 4


def test_even_chunk_start_steps_from_the_smallest_key_to_an_open_end():
    assert even_chunk_start((1001, 1099), None, 16) == (1017,)
    assert even_chunk_start((1001, 1099), (1081,), 16) == (1097,)
    assert even_chunk_start((1001, 1099), (1097,), 16) is None   # past the largest key


@pytest.mark.parametrize("ddl, ids, ends", [
    ("(id INT PRIMARY KEY, v INT)", DENSE, [(1000 + 16 * k,) for k in range(1, 7)]),
    # sparse: the index scan, 16 rows a chunk
    ("(id INT PRIMARY KEY, v INT)", list(range(0, 4000, 40)),
     [(640 * k,) for k in range(1, 7)]),
])
def test_chunks_tile_the_key_space(mysql_server, ddl, ids, ends):
    db = new_database(mysql_server)
    table = _make(mysql_server, db, "t", ddl, ids)
    ctx = HeldCalls()
    en = MySqlEnumerator(ctx, source_config(mysql_server, db, **{"chunk-size": 16}), None)
    try:
        en.start()
        for _ in range(10):
            en.handle_split_request(0)
            while ctx.calls:
                ctx.run_next()
    finally:
        en.close()
    chunks = [(s.start, s.end) for _, s in ctx.assigned]
    assert [end for _, end in chunks] == ends + [None]
    assert [start for start, _ in chunks] == [None] + ends
    assert all(s.table_id == table for _, s in ctx.assigned)
