"""Shared helpers of the MySQL source suites: a database per test, running the source
in-process into the reference sink, and replaying what it committed into a table state."""
from __future__ import annotations

import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

from runtime.checkpoint.storage import CheckpointStorage
from runtime.executor.job import Job
from runtime.executor.local import LocalExecutor
from sources.mysql.config import MySqlSourceConfig
from sources.mysql.source import MySqlSource
from tests.conformance.harness import CollectSink, CollectStore


def new_database(server: Any) -> str:
    name = "t_" + uuid.uuid4().hex[:10]
    conn = server.connect()
    with conn.cursor() as cur:
        cur.execute(f"CREATE DATABASE {name}")
    conn.close()
    return name


def orders_table(server: Any, rows: int) -> str:
    """A new database with ``orders`` (id, name, amount) holding ids 0 .. ``rows`` - 1 (a
    multiple of 20,000 or fewer); returns the database's name."""
    db = new_database(server)
    conn = server.connect()
    with conn.cursor() as cur:
        cur.execute(f"CREATE TABLE {db}.orders (id BIGINT PRIMARY KEY, name VARCHAR(40), "
                    f"amount DECIMAL(12,2))")
        for start in range(0, rows, 20_000):
            cur.execute(f"INSERT INTO {db}.orders VALUES " + ",".join(
                f"({i}, 'order {i}', {i}.{i % 100:02d})"
                for i in range(start, min(rows, start + 20_000))))
    conn.commit()
    conn.close()
    return db


def source_config(server: Any, db: str, **options: Any) -> MySqlSourceConfig:
    return MySqlSourceConfig.model_validate({
        "hostname": server.host, "port": server.port, "username": server.user,
        "password": server.password, "tables": [f"{db}\\..*"], "heartbeat-interval": "200ms",
        **options})


class Running:
    """A pipeline (source -> reference sink) running in a thread until ``stop``.  Given the
    ``state_dir`` and ``store`` of an earlier run, it resumes from that run's last checkpoint
    into the same reference sink."""

    def __init__(self, config: MySqlSourceConfig, parallelism: int = 2, interval_s: float = 0.2,
                 state_dir: str | None = None, store: CollectStore | None = None):
        self.store = store if store is not None else CollectStore()
        self.dir = state_dir or tempfile.mkdtemp(prefix="hub-mysql-test-")
        storage = CheckpointStorage(self.dir)
        self.job = Job("mysql-test", MySqlSource(config), CollectSink(self.store), storage,
                       parallelism=parallelism, checkpoint_interval_s=interval_s,
                       restore=storage.latest() if state_dir else None)
        self.executor = LocalExecutor(self.job)
        self.result: Any = None
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        try:
            self.result = self.executor.run()
        except BaseException as exc:  # noqa: BLE001 - re-raised by stop()
            self.error = exc

    def __enter__(self) -> Running:
        self.thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def stop(self) -> None:
        if self.thread.is_alive():
            self.executor.request_stop()
            self.thread.join(60)

    def wait_for(self, check: Callable[[list[tuple]], bool], timeout: float = 30.0) -> list[tuple]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.error is not None:
                raise self.error
            events = committed(self.store)
            if check(events):
                return events
            time.sleep(0.1)
        raise AssertionError(f"timed out; committed so far: {len(committed(self.store))} events")


def committed(store: CollectStore) -> list[tuple]:
    """(table, op, *row) in commit order (per subtask, the order written)."""
    with store.lock:
        return [e for rows in list(store.committed.values()) for e in rows]


def record_schema_changes(monkeypatch: Any) -> None:
    """Make the reference sink keep schema changes in line with the data, as
    ``("schema", kind, table, details, column names)``."""
    from tests.conformance import harness

    def write_schema_change(self: Any, change: Any) -> None:
        names = tuple(change.schema.names) if change.schema is not None else ()
        self.buffer.append(("schema", change.kind, change.table,
                            tuple(sorted(change.details.items())), names))

    monkeypatch.setattr(harness._CollectWriter, "write_schema_change", write_schema_change,
                        raising=False)


def data_only(events: list[tuple]) -> list[tuple]:
    return [e for e in events if e[0] != "schema"]


def replay(events: list[tuple], key_len: int = 1) -> dict[tuple, tuple]:
    """Table state from change events: upserts for r/c/u, removal for d."""
    state: dict[tuple, tuple] = {}
    for e in events:
        row = e[2:]
        key = (e[0],) + row[:key_len]
        if e[1] == "d":
            state.pop(key, None)
        else:
            state[key] = row
    return state


def table_rows(server: Any, db: str, table: str, config: MySqlSourceConfig) -> dict[tuple, tuple]:
    """The table as the snapshot reader sees it now, keyed like :func:`replay`."""
    from sources.mysql.catalog import describe
    from sources.mysql.snapshot import select_chunk

    conn = server.connect()
    with conn.cursor() as cur:
        cur.execute("SET time_zone = '+00:00'")
    t = describe(conn, f"{db}.{table}", {})
    rb = select_chunk(conn, t, None, None, None, True)
    conn.close()
    cols = [c.to_pylist() for c in rb.columns]
    return {(f"{db}.{table}", r[0]): tuple(r) for r in zip(*cols)}


def exactly_once(events: list[tuple], table: str) -> dict:
    """Replay ``table``'s events, failing on any sign of a lost or repeated change: every
    update adds 1 to ``v``, so a repeated update shows as a step of 0, a lost one as a step of
    2; a read or insert of a key already there, or an update or delete of a key not there, is
    a duplicate or a loss too.  Returns the state (id -> row)."""
    state: dict = {}
    for e in events:
        if e[0] != table:
            continue
        op, row = e[1], e[2:]
        k = row[0]
        if op in ("r", "c"):
            assert k not in state, f"{table}: {op} of key {k} already there: {state[k]} -> {row}"
            state[k] = row
        elif op == "u":
            assert k in state, f"{table}: update of key {k} never read or inserted: {row}"
            assert row[1] == state[k][1] + 1, f"{table}: key {k} went from {state[k]} to {row}"
            state[k] = row
        else:
            assert k in state, f"{table}: delete of key {k} not there: {row}"
            del state[k]
    return state
