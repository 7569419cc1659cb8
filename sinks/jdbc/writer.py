"""The JDBC sink writer: buffers change batches per table, collapses them by key and writes
them into one open transaction per checkpoint, which it prepares at the barrier."""
from __future__ import annotations

import base64
import logging
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa

from runtime.batch import DELETE, READ, ChangeBatch
from runtime.deadletter import record_id
from runtime.errors import BadRecordError, HubError, TerminalError, TransientError
from runtime.schema import Column, SchemaChange, TableSchema, split_table_id
from runtime.sink import Committable, SinkWriter, WriterContext
from sinks.jdbc import evolution
from sinks.jdbc.config import JdbcSinkConfig
from sinks.jdbc.dialect import Dialect, TableRef, first_line, translated

#: Transaction ids tried per checkpoint when the server holds prepared ones of that id.
MAX_SERIALS = 1000
#: How long a writer waits to hear that its previous checkpoint committed before it gives up.
AWAIT_COMMIT_S = 20.0

log = logging.getLogger(__name__)

_DELETE = ord(DELETE)
_READ = ord(READ)


def collapse(rows: pa.Table, ops: np.ndarray, key: list[str]) -> tuple[pa.Table, pa.Table]:
    """Keep the last event of each key (events are in order): ``(upserts, deleted keys)``.
    Vectorised: one Arrow group-by, no per-row Python."""
    n = rows.num_rows
    if key:
        index = pa.array(np.arange(n, dtype=np.int64))
        last = (rows.select(key).append_column("__i", index)
                .group_by(key, use_threads=False).aggregate([("__i", "max")]).column("__i_max"))
        if len(last) < n:
            keep = np.sort(last.to_numpy())
            rows, ops = rows.take(keep), ops[keep]
    is_delete = ops == _DELETE
    if not is_delete.any():
        return rows, rows.slice(0, 0).select(key)
    mask = pa.array(is_delete)
    return rows.filter(pa.array(~is_delete)), rows.filter(mask).select(key)


@dataclass
class _Table:
    """What the writer knows about one source table and its target."""

    ref: TableRef
    schema: TableSchema
    #: target columns (name -> nullable), None when the table does not exist
    target: dict[str, bool] | None
    write: list[Column] = field(default_factory=list)
    key: list[Column] = field(default_factory=list)


class JdbcSinkWriter(SinkWriter):
    """Writes the change batches of one subtask into one database transaction per checkpoint.

    * Batches are buffered per table and written (upserts and deletes by primary key, the
      last event per key winning) when ``batch-size`` rows are buffered, when the oldest is
      ``flush-interval`` old, before a schema change of the table and at the barrier.
    * Snapshot reads (a flush whose events are all op ``r``) are inserts of keys nothing
      else touched yet: a dialect with a fast path for new rows (PostgreSQL COPY straight
      into the target) writes them so, in the same transaction; where a key exists already
      the dialect undoes that write and the table goes the upsert way from then on
      (``snapshot-copy``).
    * :meth:`prepare_commit` prepares the open transaction under the id
      ``hub:<pipeline>:<subtask>:<checkpoint>`` and returns ``[{"xid": ...}]``: nothing is
      visible before the committer commits it.
    * A row the database refuses is found by bisecting the batch and goes to
      ``context.dead_letter`` with its table, key and column (which raises unless the
      pipeline tolerates bad records).
    * DDL on MySQL/MariaDB can't join the XA transaction, and can't run beside it on a table
      the transaction wrote to (the transaction, open or prepared, holds that table's metadata
      lock until it commits).  So a schema change of such a table is *deferred*, together with
      the table's later batches, until the transaction committed: it is applied (DDL in
      autocommit, which the target's current columns make idempotent) at the start of the
      next transaction, and the deferred rows are written into that one.  Until then they are
      part of the writer's checkpoint state, so nothing is committed early and nothing is lost
      in a crash.
    * State: the last prepared checkpoint id (transaction ids of MySQL are chosen when the
      transaction begins, before its checkpoint id is known) and the deferred elements.
    """

    def __init__(self, config: JdbcSinkConfig, dialect: Dialect, context: WriterContext,
                 state: dict[str, Any] | None):
        self._config = config
        self._dialect = dialect
        self._context = context
        self._conn: Any = None
        self._tables: dict[str, _Table] = {}
        self._buffers: dict[str, list[ChangeBatch]] = {}
        self._buffered: dict[str, int] = {}
        self._since: dict[str, float] = {}
        self._xid: str | None = None  # the open transaction
        self._checkpoint = (state or {}).get("checkpoint", 0) + 1  # the next one expected
        self._serial = 0  # transactions committed early within this checkpoint (MySQL DDL)
        self._txns = 0  # transactions begun: makes staging names unique
        self._token = uuid.uuid4().hex[:12]  # ... together with this writer's own token
        self._side: Any = None  # autocommit connection for CREATE TABLE
        #: our prepared transaction not known committed, and its checkpoint
        self._awaiting: tuple[str, int] | None = None
        #: the latest checkpoint the runtime told us is committed (notify_checkpoint_complete)
        self._committed = 0
        self._ddl_refs: set[TableRef] = set()  # tables changed by DDL in the open transaction
        self._sources: dict[TableRef, str] = {}  # target table -> its source table
        self._shortened: set[TableRef] = set()  # shortened target names, said once
        #: MySQL: tables the open XA transaction wrote to (it holds their metadata locks)
        self._touched: set[TableRef] = set()
        #: MySQL: schema changes and batches waiting for the open transaction's commit
        self._deferred: list[ChangeBatch | SchemaChange] = [
            _decode(d) for d in (state or {}).get("deferred", ())]
        self._deferred_tables: set[str] = {el.table for el in self._deferred}
        #: source tables whose snapshot rows met existing keys: no COPY for them any more
        self._upsert_only: set[str] = set()

    # -- SinkWriter ---------------------------------------------------------------------------
    @translated("writing")
    def write(self, batch: ChangeBatch) -> None:
        if not len(batch):
            return
        table_id = batch.table
        if table_id in self._deferred_tables:
            self._deferred.append(batch)  # after a deferred schema change of its table
            return
        buffered = self._buffers.get(table_id)
        if buffered and buffered[0].schema != batch.schema:
            self._flush(table_id)
            buffered = None
        if not buffered:
            self._buffers[table_id] = [batch]
            self._buffered[table_id] = len(batch)
            self._since[table_id] = time.monotonic()
        else:
            buffered.append(batch)
            self._buffered[table_id] += len(batch)
        if (self._buffered[table_id] >= self._config.batch_size
                or time.monotonic() - self._since[table_id] >= self._config.flush_interval):
            self._flush(table_id)

    @translated("applying a schema change")
    def write_schema_change(self, change: SchemaChange) -> None:
        if change.table in self._buffers:
            self._flush(change.table)  # data before the change is written with the old schema
        if self._must_defer(change.table):
            self._defer([change])
            return
        mode = self._config.schema_evolution
        if change.kind == "create_table":
            if change.schema is not None:
                self._resolve(change.schema)
            return
        if mode == "exception":
            raise TerminalError(f"jdbc sink: {change.kind} on {change.table} and "
                                f"schema-evolution = \"exception\"")
        st = self._tables.get(change.table)
        if st is None:
            ref = self._ref(change.table)
            st = _Table(ref, change.schema or TableSchema(change.table, ()),
                        self._dialect.columns(self._connection(), ref))
        if change.schema is not None:
            self._check_columns(change.schema, st.ref)
        if mode != "ignore":
            for statement in evolution.plan(self._dialect, mode, change, st.ref, st.target,
                                            st.schema):
                try:
                    self._ddl(statement, st.ref)
                except HubError:
                    raise
                except Exception as exc:  # noqa: BLE001 - the database refused the DDL
                    if mode != "try-evolve" or self._dialect.is_transient(exc):
                        raise self._error(f"applying {change.kind} to {st.ref}", exc) from exc
                    log.warning("jdbc sink: %s refused %r (%s); try-evolve goes on without it",
                                st.ref, statement, first_line(exc))
            st.target = self._dialect.columns(self._connection(), st.ref)
        if change.schema is None:
            self._tables.pop(change.table, None)
            return
        st.schema = change.schema
        self._tables[change.table] = st
        self._columns(st)

    @translated("preparing")
    def prepare_commit(self, checkpoint_id: int) -> list[Committable]:
        if self._deferred and self._xid is None:
            self._begin()  # deferred before the last checkpoint: apply them now
        for table_id in list(self._buffers):
            self._flush(table_id)
        self._checkpoint, self._serial = checkpoint_id + 1, 0
        if self._xid is None:
            return []
        xid, self._xid = self._xid, None
        self._touched.clear()  # DDL beside a prepared transaction waits for its commit, no more
        if self._dialect.transactional_ddl and self._config.exactly_once:
            # PostgreSQL names the transaction at prepare time: use the real checkpoint id
            xid = self._dialect.xid(self._context.pipeline, self._context.subtask, checkpoint_id)
        try:
            if self._config.exactly_once:
                self._dialect.prepare(self._conn, xid)
                if self._dialect.detach_after_prepare:
                    self._conn.close()
                    self._conn = None
                self._awaiting = (xid, checkpoint_id)
                return [{"xid": xid}]
            self._dialect.commit(self._conn, xid)
            return []
        except Exception as exc:
            raise self._error(f"preparing transaction {xid}", exc) from exc

    def snapshot_state(self, checkpoint_id: int) -> dict[str, Any]:
        state: dict[str, Any] = {"checkpoint": checkpoint_id}
        if self._deferred:
            state["deferred"] = [_encode(el) for el in self._deferred]
        return state

    def notify_checkpoint_complete(self, checkpoint_id: int) -> None:
        self._committed = max(self._committed, checkpoint_id)

    def close(self) -> None:
        self._buffers.clear()
        try:
            if self._xid is not None and self._conn is not None:
                self._dialect.rollback(self._conn, self._xid)
        except Exception as exc:  # noqa: BLE001 - closing the connection rolls back anyway
            log.info("jdbc sink: rollback of %s on close failed (%s); the server discards it "
                     "with the connection", self._xid, first_line(exc))
        finally:
            self._xid = None
            for conn in (self._conn, self._side):
                try:
                    if conn is not None:
                        conn.close()
                except Exception:  # noqa: BLE001
                    log.debug("jdbc sink: closing a connection failed", exc_info=True)
            self._conn = self._side = None

    # -- tables ---------------------------------------------------------------------------------
    def _connection(self) -> Any:
        if self._conn is None:
            self._conn = self._dialect.connect()
        return self._conn

    def _ref(self, table_id: str) -> TableRef:
        """The target of source table ``table_id``.  Names are data: a name too long for the
        database is shortened uniquely (:meth:`Dialect.short_name`; PostgreSQL would cut it,
        and two long names would become one table whose writers wait on each other's
        prepared transactions), and a second source table with the same target is a
        one-line terminal error naming both."""
        db, name = split_table_id(table_id)
        full = self._config.table_name.format(table=name, db=db)
        ref = TableRef(self._dialect.target.schema, self._dialect.short_name(full))
        other = self._sources.setdefault(ref, table_id)
        if other != table_id:
            raise TerminalError(f"jdbc sink: source tables {other} and {table_id} both map to "
                                f"target table {ref}: make table-name tell them apart (e.g. "
                                f"\"{{db}}_{{table}}\")")
        if ref.name != full and ref not in self._shortened:
            self._shortened.add(ref)
            log.warning("jdbc sink: target table name %r of source table %s is too long for "
                        "%s (%d at most): writing to %s", full, table_id, self._dialect.name,
                        self._dialect.max_identifier, ref)
        return ref

    def _check_columns(self, schema: TableSchema, ref: TableRef) -> None:
        for c in schema.columns:
            problem = self._dialect.identifier_problem(c.name)
            if problem:
                raise TerminalError(f"jdbc sink: column name {c.name!r} of source table "
                                    f"{schema.table} (target {ref}) {problem}: rename the "
                                    f"column at the source or leave the table out of the "
                                    f"pipeline")

    def _resolve(self, schema: TableSchema) -> _Table:
        st = self._tables.get(schema.table)
        if st is not None and st.schema == schema and st.target is not None:
            return st
        if st is None or st.target is None:
            ref = self._ref(schema.table)
            st = _Table(ref, schema, self._dialect.columns(self._connection(), ref))
            self._tables[schema.table] = st
        st.schema = schema
        self._check_columns(schema, st.ref)
        if st.target is None:
            if not self._config.auto_create:
                raise TerminalError(f"jdbc sink: table {st.ref} does not exist and auto-create "
                                    f"is off (source table {schema.table})")
            key = () if self._config.write_mode == "append" else schema.primary_key
            self._create(st.ref, self._dialect.create_table_sql(st.ref, schema.columns, key))
            st.target = self._dialect.columns(self._connection(), st.ref)
        missing = [c for c in schema.columns if c.name not in (st.target or {})]
        mode = self._config.schema_evolution
        if missing and mode == "exception":
            raise TerminalError(f"jdbc sink: {st.ref} has no column(s) "
                                f"{', '.join(c.name for c in missing)} of {schema.table} and "
                                f"schema-evolution = \"exception\"")
        if missing and mode != "ignore":  # a change we were not told about: same remedy
            if self._must_defer(schema.table):
                raise _MustDefer
            for c in missing:
                self._ddl(self._dialect.add_column_sql(st.ref, c), st.ref)
            st.target = self._dialect.columns(self._connection(), st.ref)
        self._columns(st)
        return st

    def _columns(self, st: _Table) -> None:
        target = st.target or {}
        st.write = [c for c in st.schema.columns if c.name in target]
        if self._config.write_mode == "append":
            st.key = []
            return
        if not st.schema.primary_key:
            raise TerminalError(f"jdbc sink: source table {st.schema.table} has no primary key, "
                                f"which upserts into {st.ref} need: set write-mode = \"append\"")
        absent = [k for k in st.schema.primary_key if k not in target]
        if absent:
            raise TerminalError(f"jdbc sink: table {st.ref} lacks the key column(s) {absent}")
        st.key = [st.schema.column(k) for k in st.schema.primary_key]

    # -- transactions ---------------------------------------------------------------------------
    def _begin(self) -> Any:
        conn = self._connection()
        if self._xid is None:
            if self._awaiting is not None:
                self._await_commit(*self._awaiting)
                self._awaiting = None
            if self._deferred:
                self._drain()  # begins the transaction when it writes rows
                if self._xid is not None:
                    return conn
            ctx = self._context
            for _ in range(MAX_SERIALS):
                xid = self._dialect.xid(ctx.pipeline, ctx.subtask, self._checkpoint, self._serial)
                try:
                    self._dialect.begin(conn, xid)
                    break
                except Exception as exc:
                    # still prepared, e.g. by a writer that started without restored state
                    if not self._dialect.duplicate_xid(exc):
                        raise self._error(f"starting transaction {xid}", exc) from exc
                    self._serial += 1
            else:
                # never go on with a transaction that did not begin: its writes would be
                # committed one by one, outside any checkpoint
                raise TerminalError(
                    f"jdbc sink: can't start a transaction: {MAX_SERIALS} transaction ids "
                    f"{self._dialect.xid(ctx.pipeline, ctx.subtask, self._checkpoint)}[.n] are "
                    f"all prepared already; finish them (XA RECOVER, XA ROLLBACK) and restart")
            self._xid = xid
            self._txns += 1
            self._ddl_refs.clear()
            self._touched.clear()
        return conn

    def _create(self, ref: TableRef, statement: str) -> None:
        """Create a table.  Outside the two-phase transaction (an empty table is harmless to
        commit early): created inside it, the table would block every other subtask's
        writes to it until this checkpoint commits, which needs those subtasks' barriers."""
        if self._dialect.transactional_ddl and ref in self._ddl_refs:
            self._ddl(statement, ref)  # dropped in this very transaction: create it there too
            return
        try:
            self._dialect.execute_ddl(self._side_connection(), statement)
        except Exception as exc:
            # another subtask may have created it at the same moment
            if self._dialect.columns(self._side, ref) is None:
                raise self._error(f"creating {ref}", exc) from exc

    def _await_commit(self, xid: str, checkpoint_id: int) -> None:
        """Wait until the runtime tells that checkpoint ``checkpoint_id`` (whose transaction
        ``xid`` we prepared) is committed.  Rows it inserted are invisible to the next
        transaction until then: a PostgreSQL DELETE would miss them, and the delete would be
        lost when they become visible.  The commit needs nothing more from this writer (its
        barrier was acknowledged), so the wait is bounded: a checkpoint that timed out is
        committed with a later one, which can't complete while we wait."""
        deadline = time.monotonic() + AWAIT_COMMIT_S
        while self._committed < checkpoint_id:
            left = deadline - time.monotonic()
            if left <= 0 or not self._context.notifications.wait(left):
                # the checkpoint is stuck (e.g. another writer waits on our locks): restart
                raise TransientError(f"jdbc sink: transaction {xid} of checkpoint "
                                     f"{checkpoint_id} is still not committed after "
                                     f"{AWAIT_COMMIT_S:.0f}s")

    def _ddl(self, statement: str, ref: TableRef) -> None:
        if self._dialect.transactional_ddl:
            self._dialect.execute_ddl(self._begin(), statement)
            self._ddl_refs.add(ref)
            return
        if self._config.exactly_once:
            # Beside the XA transaction, on a table it did not write to (the callers defer
            # schema changes of the others): the transaction stays open, nothing commits early.
            if ref in self._touched:
                raise AssertionError(f"jdbc sink: DDL on {ref}, which the open transaction "
                                     f"{self._xid} wrote to")
            self._dialect.execute_ddl(self._side_connection(), statement)
            return
        if self._xid is not None:
            # at least once: commit what was written so far (a replay after a crash writes
            # it again), since DDL can't run inside an XA transaction
            log.info("jdbc sink: committing transaction %s before DDL (MySQL has no "
                     "transactional DDL)", self._xid)
            self._dialect.commit(self._conn, self._xid)
            self._xid = None
            self._serial += 1
        self._dialect.execute_ddl(self._connection(), statement)

    def _side_connection(self) -> Any:
        """The autocommit connection for DDL outside the writer's transaction."""
        if self._side is None:
            self._side = self._dialect.connect(autocommit=True)
        return self._side

    # -- deferred schema changes (MySQL) -----------------------------------------------------
    def _must_defer(self, table_id: str) -> bool:
        """Whether a schema change of ``table_id`` must wait for the open XA transaction's
        commit: it wrote to the table (or an earlier change of it waits already)."""
        if self._dialect.transactional_ddl or not self._config.exactly_once:
            return False
        if table_id in self._deferred_tables:
            return True
        st = self._tables.get(table_id)
        return self._xid is not None and (st.ref if st else self._ref(table_id)) in self._touched

    def _defer(self, elements: list[ChangeBatch | SchemaChange]) -> None:
        table_id = elements[0].table
        if table_id not in self._deferred_tables:
            log.info("jdbc sink: a schema change of %s waits for transaction %s to commit "
                     "(MySQL can't change a table an open XA transaction wrote to); its rows "
                     "wait with it", table_id, self._xid)
        self._deferred_tables.add(table_id)
        self._deferred.extend(elements)

    def _drain(self) -> None:
        """Apply what was deferred, in order, now that no transaction of ours holds a lock.
        What must wait again (a second schema change after rows written now) is deferred
        again, to the next transaction."""
        elements, self._deferred, self._deferred_tables = self._deferred, [], set()
        for el in elements:
            if isinstance(el, SchemaChange):
                self.write_schema_change(el)
            else:
                self.write(el)

    # -- writing ----------------------------------------------------------------------------------
    def _flush(self, table_id: str) -> None:
        batches = self._buffers.pop(table_id)
        self._buffered.pop(table_id, None)
        self._since.pop(table_id, None)
        try:
            st = self._resolve(batches[0].schema)
        except _MustDefer:
            self._defer(list(batches))
            return
        rows = pa.Table.from_batches([b.arrow() for b in batches])
        ops = np.frombuffer("".join(b.ops for b in batches).encode("ascii"), dtype=np.uint8)
        self._begin()
        if table_id in self._deferred_tables:  # _begin applied deferred changes of the table
            self._deferred.extend(batches)  # ... and deferred some again: keep the order
            return
        self._touched.add(st.ref)
        names = [c.name for c in st.write]
        if self._config.write_mode == "append":
            rows = rows.filter(pa.array(ops != _DELETE)) if (ops == _DELETE).any() else rows
            if rows.num_rows:
                self._apply(st, "insert", rows.select(names))
            return
        if self._copy_new(st, table_id, rows.select(names), ops):
            return
        key = [c.name for c in st.key]
        upserts, deletes = collapse(rows, ops, key)
        if deletes.num_rows:
            self._apply(st, "delete", deletes)
        if upserts.num_rows:
            self._apply(st, "upsert", upserts.select(names))

    def _copy_new(self, st: _Table, table_id: str, rows: pa.Table, ops: np.ndarray) -> bool:
        """Snapshot reads only (every op ``r``): insert them with the dialect's fast path
        (COPY) into the open transaction.  Their keys are new unless the target held rows
        before the pipeline started (or a key was read twice): then the dialect refuses the
        whole batch, and this table goes the upsert way from now on (True: written)."""
        if (not self._config.snapshot_copy or not self._dialect.copies_new_rows
                or table_id in self._upsert_only or not (ops == _READ).all()):
            return False
        try:
            if self._dialect.insert_new(self._conn, st.ref, st.write, rows):
                return True
        except Exception as exc:
            if self._dialect.rejection(exc, rows.column_names) is None:
                raise self._error(f"writing to {st.ref}", exc) from exc
            # a refused value: the upsert path finds the row (bisecting) and reports it
            log.debug("jdbc sink: COPY into %s refused a value (%s); upserting the batch to "
                      "find the row", st.ref, first_line(exc))
            return False
        self._upsert_only.add(table_id)
        log.info("jdbc sink: %s holds keys of snapshot rows of %s already (or is a view): "
                 "upserting them (not COPY) from now on", st.ref, table_id)
        return False

    def _apply(self, st: _Table, kind: str, rows: pa.Table) -> None:
        """Write ``rows``; when the database refuses one, bisect to find it (and every other
        refused row), write the rest and report the refused ones."""
        d, conn = self._dialect, self._conn
        # unique among transactions that may be prepared at the same time
        tag = f"{self._context.subtask}_{self._token}_{self._txns}"
        try:
            if kind == "upsert":
                d.upsert(conn, st.ref, st.write, tuple(c.name for c in st.key), rows, tag)
            elif kind == "delete":
                d.delete(conn, st.ref, st.key, rows, tag)
            else:
                d.insert(conn, st.ref, st.write, rows)
        except Exception as exc:
            rejection = d.rejection(exc, rows.column_names)
            if rejection is None:
                raise self._error(f"writing to {st.ref}", exc) from exc
            if rows.num_rows > 1:
                half = rows.num_rows // 2
                self._apply(st, kind, rows.slice(0, half))
                self._apply(st, kind, rows.slice(half))
                return
            record = rows.to_pylist()[0]
            key = {c.name: record.get(c.name) for c in st.key} or record
            name = rejection.column or _nul_column(rejection.message, record)
            column = f", column {name}" if name else ""
            error = BadRecordError(f"jdbc sink: table {st.ref} refused the {kind} of the row "
                                   f"with key {key} (source table {st.schema.table}){column}: "
                                   f"{rejection.message}")
            self._context.dead_letter.report(error, record, origin=f"jdbc:{st.ref}",
                                             record_id=record_id(st.schema.table, key, record))

    def _error(self, what: str, exc: BaseException) -> HubError:
        return self._dialect.translate(exc, what)


class _MustDefer(Exception):
    """A batch needs DDL of a table the open XA transaction wrote to."""


def _encode(el: ChangeBatch | SchemaChange) -> dict[str, Any]:
    """A deferred element as plain data for the checkpoint (rows as Arrow IPC, base64)."""
    if isinstance(el, SchemaChange):
        return {"change": el.to_dict()}
    sink = pa.BufferOutputStream()
    arrow = el.arrow()
    with pa.ipc.new_stream(sink, arrow.schema) as out:
        out.write_batch(arrow)
    return {"schema": el.schema.to_dict(), "ops": el.ops,
            "ipc": base64.b64encode(sink.getvalue().to_pybytes()).decode("ascii")}


def _decode(d: dict[str, Any]) -> ChangeBatch | SchemaChange:
    if "change" in d:
        return SchemaChange.from_dict(d["change"])
    reader = pa.ipc.open_stream(base64.b64decode(d["ipc"]))
    return ChangeBatch(TableSchema.from_dict(d["schema"]), d["ops"],
                       arrow=reader.read_next_batch())


def _nul_column(message: str, record: dict[str, Any]) -> str | None:
    """The column of a NUL character, which PostgreSQL text can't hold and whose refusal
    ("invalid byte sequence ... 0x00") names no column."""
    if "0x00" not in message:
        return None
    return next((n for n, v in record.items() if isinstance(v, str) and "\x00" in v), None)
