"""The JDBC sink's cases of the shared sink conformance suite.

The suite compares the multiset of every event it sent, ``(table, op, id, name)``, with what
the sink made visible.  An upsert table keeps only the last image per key, so the case runs
the sink in ``append`` mode on a changelog view of the events: each event becomes a row
``(id, name, amount, op)`` inserted as is.  Append mode has no key to hide a replayed
duplicate behind, so this is the strict test of the two-phase commit: a row committed twice
or lost shows up.  Upsert semantics across failures are tested in ``test_jdbc_exactly_once``.
"""
from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

from runtime.batch import CREATE, ChangeBatch
from runtime.schema import Column, TableSchema
from runtime.sink import Committer, Sink, SinkWriter
from runtime.types import T
from tests.integration.jdbc.databases import Database, create_database, shared_server


class _ChangelogWriter(SinkWriter):
    def __init__(self, inner: SinkWriter):
        self.inner = inner
        self.schemas: dict[TableSchema, TableSchema] = {}

    def write(self, batch: ChangeBatch) -> None:
        schema = self.schemas.get(batch.schema)
        if schema is None:
            cols = tuple(Column(c.name, c.type, True) for c in batch.schema.columns)
            schema = self.schemas[batch.schema] = TableSchema(
                batch.schema.table, cols + (Column("op", T("CHAR(1)")),), ())
        rows = [tuple(r) + (op,) for op, r in zip(batch.ops, batch.rows())]
        self.inner.write(ChangeBatch(schema, CREATE * len(rows), rows=rows, ts_ms=batch.ts_ms_list()))

    def prepare_commit(self, checkpoint_id: int) -> list[dict]:
        return self.inner.prepare_commit(checkpoint_id)

    def snapshot_state(self, checkpoint_id: int) -> dict[str, Any] | None:
        return self.inner.snapshot_state(checkpoint_id)

    def notify_checkpoint_complete(self, checkpoint_id: int) -> None:
        self.inner.notify_checkpoint_complete(checkpoint_id)

    def close(self) -> None:
        self.inner.close()


class ChangelogSink(Sink):
    """Wraps a JDBC sink in append mode: every event is inserted as a row with its op."""

    def __init__(self, inner: Sink):
        self.inner = inner

    def check(self) -> None:
        self.inner.check()

    def create_writer(self, context, state) -> SinkWriter:
        return _ChangelogWriter(self.inner.create_writer(context, state))

    def create_committer(self) -> Committer:
        return self.inner.create_committer()


def _database(flavor: str, root: Path) -> Database:
    return Database(flavor, shared_server(flavor), "t_" + __import__("hashlib").sha1(
        str(root).encode()).hexdigest()[:16])


def jdbc_case(flavor: str, upsert: bool) -> Any:
    """Upsert case: the sink as users run it, compared with the final state per key.
    Changelog case: see the module docstring."""
    from tests.conformance.sinks import SinkCase

    def make(root: Path) -> Sink:
        from sinks.jdbc.config import JdbcSinkConfig
        from sinks.jdbc.sink import JdbcSink

        # made again at every restart of a test: keep what the earlier runs wrote
        db = create_database(flavor, shared_server(flavor), str(root), fresh=False)
        if upsert:
            return JdbcSink(JdbcSinkConfig.model_validate({"url": db.url, "batch-size": 64}))
        return ChangelogSink(JdbcSink(JdbcSinkConfig.model_validate(
            {"url": db.url, "write-mode": "append", "batch-size": 64})))

    def read(root: Path) -> Counter:
        db = _database(flavor, root)
        rows: Counter = Counter()
        if not db.exists("orders"):
            return rows
        if upsert:
            for id_, name in db.query(f"SELECT id, name FROM {db.q('orders')}"):
                rows[("test.orders", int(id_), name)] += 1
            return rows
        for op, id_, name in db.query(f"SELECT op, id, name FROM {db.q('orders')}"):
            rows[("test.orders", op, int(id_), name)] += 1
        return rows

    return SinkCase(make, read, upsert=upsert)
