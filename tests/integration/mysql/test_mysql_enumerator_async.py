"""Chunk boundaries are queried off the control thread (EnumeratorContext.call_async): split
requests wait for them while checkpoints go on, and a checkpoint taken while a boundary query
runs is restored into the same chunks (the query runs again)."""
from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from runtime.source import EnumeratorContext
from sources.mysql.enumerator import MySqlEnumerator
from tests.integration.mysql.helpers import (Running, new_database, replay, source_config,
                                             table_rows)

pytestmark = [pytest.mark.integration, pytest.mark.mysql]


class HeldCalls(EnumeratorContext):
    """The runtime's enumerator context with call_async held until the test runs the call
    (the executor's I/O thread, stopped at will)."""

    parallelism = 2

    def __init__(self) -> None:
        self.calls: list[tuple[Any, Any]] = []
        self.assigned: list[tuple[int, Any]] = []

    def assign_splits(self, assignment):
        self.assigned += [(sub, s) for sub, splits in assignment.items() for s in splits]

    def signal_no_more_splits(self, subtask):
        pass

    def registered_readers(self):
        return [0, 1]

    def schedule(self, fn, interval_s):
        pass

    def call_async(self, fn, handler):
        self.calls.append((fn, handler))

    def run_next(self) -> None:
        fn, handler = self.calls.pop(0)
        handler(fn(), None)


def _table(server, db: str, n: int) -> str:
    conn = server.connect()
    with conn.cursor() as cur:
        cur.execute(f"CREATE TABLE {db}.t (id INT PRIMARY KEY, v VARCHAR(20))")
        cur.executemany(f"INSERT INTO {db}.t VALUES (%s, %s)", [(i, f"v{i}") for i in range(n)])
    conn.close()
    return f"{db}.t"


def test_a_checkpoint_during_a_boundary_query_is_restored_into_the_same_chunks(mysql_server):
    db = new_database(mysql_server)
    table = _table(mysql_server, db, 100)
    config = source_config(mysql_server, db, **{"chunk-size": 16})
    ctx = HeldCalls()
    en = MySqlEnumerator(ctx, config, None)
    try:
        en.start()
        en.handle_split_request(0)
        en.handle_split_request(1)
        assert ctx.assigned == [] and len(ctx.calls) == 1   # one query at a time, not run yet
        state = en.snapshot_state(1)                         # while it runs
        assert state["splitting"][table] == {"next": None, "index": 0} and state["pending"] == []
        ctx.run_next()                                       # the first chunk: to subtask 0
        ctx.run_next()                                       # the second: to subtask 1
        first = [(sub, s.split_id, s.start, s.end) for sub, s in ctx.assigned]
        assert first == [(0, f"{table}#0", None, (16,)), (1, f"{table}#1", (16,), (32,))]
        assert en.snapshot_state(2)["splitting"][table] == {"next": [32], "index": 2}
    finally:
        en.close()
    # a restore from the checkpoint taken while the query ran cuts the same chunks again
    ctx2 = HeldCalls()
    again = MySqlEnumerator(ctx2, config, state)
    try:
        again.start()
        again.handle_split_request(0)
        again.handle_split_request(1)
        ctx2.run_next()
        ctx2.run_next()
        assert [(sub, s.split_id, s.start, s.end) for sub, s in ctx2.assigned] == first
    finally:
        again.close()


def test_split_requests_wait_for_a_slow_boundary_query_while_checkpoints_go_on(
        mysql_server, monkeypatch):
    """The boundary query is held by a real table lock (LOCK TABLES ... WRITE in another
    session) right after the enumerator listed the tables: checkpoints complete meanwhile,
    and once the lock is gone the snapshot reads every row."""
    db = new_database(mysql_server)
    _table(mysql_server, db, 500)
    locker = mysql_server.connect()
    locked = threading.Event()
    original = MySqlEnumerator.start

    def start(self):
        original(self)
        if not locked.is_set():
            with locker.cursor() as cur:
                cur.execute(f"LOCK TABLES {db}.t WRITE")
            locked.set()

    monkeypatch.setattr(MySqlEnumerator, "start", start)
    config = source_config(mysql_server, db, **{"chunk-size": 50})
    try:
        with Running(config, parallelism=2, interval_s=0.1) as run:
            assert locked.wait(30)
            time.sleep(0.3)
            metrics = run.executor.metrics
            before = metrics.checkpoints_completed
            time.sleep(1.5)
            during = metrics.checkpoints_completed - before
            with locker.cursor() as cur:
                cur.execute("UNLOCK TABLES")
            expected = table_rows(mysql_server, db, "t", config)
            run.wait_for(lambda ev: replay(ev) == expected, timeout=60)
        assert during >= 5, f"only {during} checkpoints completed while the boundary query waited"
    finally:
        locker.close()


def test_a_checkpoint_while_the_binlog_start_is_queried_is_restored_into_the_same_split(
        mysql_server):
    """Once every chunk is read, the binlog split's start (the lowest HIGH, with its GTID
    state) is queried off the control thread too; a checkpoint taken meanwhile still holds
    the finished chunks, and a restore from it makes the same binlog split."""
    from sources.mysql.split import split_to_dict

    db = new_database(mysql_server)
    _table(mysql_server, db, 20)
    config = source_config(mysql_server, db, **{"chunk-size": 16})
    ctx = HeldCalls()
    en = MySqlEnumerator(ctx, config, None)
    try:
        en.start()
        en.handle_split_request(0)
        ctx.run_next()
        en.handle_split_request(1)
        ctx.run_next()
        assert len(ctx.assigned) == 2 and not ctx.calls
        high = en.start_offset
        en.handle_reader_event(0, {"finished": [split_to_dict(s.read(high, 10))
                                                for _, s in ctx.assigned]})
        assert en.binlog is None and len(ctx.calls) == 1      # the query runs, off this thread
        state = en.snapshot_state(1)
        assert state["binlog"] is None and len(state["finished"]) == 2
        ctx.run_next()
        made = en.binlog
        assert made is not None and made.offset.key == high.key and len(made.chunks) == 2
    finally:
        en.close()
    ctx2 = HeldCalls()
    again = MySqlEnumerator(ctx2, config, state)
    try:
        again.start()
        again.handle_split_request(0)                         # no chunk left: the query again
        assert len(ctx2.calls) == 1
        ctx2.run_next()
        assert again.binlog == made
    finally:
        again.close()
