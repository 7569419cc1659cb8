"""MySQL and MariaDB: multi-row ``INSERT ... ON DUPLICATE KEY UPDATE`` and batched ``DELETE``
whose SQL text is built a column at a time by Arrow; two-phase commit with XA.

DDL can't run inside an XA transaction (it commits implicitly), so this dialect reports
``transactional_ddl = False`` and the writer handles schema changes around it.
"""
from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pymysql

from formats.clients import mysql as mysql_errors
from runtime.errors import HubError, TerminalError, TransientError
from runtime.schema import Column
from runtime.types import DataType
from sinks.jdbc.dialect import Dialect, Rejection, TableRef, named_column
from sinks.jdbc.types import (hex_text, json_of_lists, mysql_type, quote_sql_strings,
                              time_text, timestamp_text)

log = logging.getLogger(__name__)

#: Strict mode: a value that does not fit is an error naming its column, never silently cut.
_SESSION = ("SET SESSION sql_mode = 'STRICT_ALL_TABLES,NO_ENGINE_SUBSTITUTION,"
            "ERROR_FOR_DIVISION_BY_ZERO,NO_ZERO_DATE,NO_ZERO_IN_DATE', time_zone = '+00:00'",
            # no gap locks: concurrent writers of one table must not block each other
            "SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED",
            # Duplicate-key checks still take next-key locks under READ COMMITTED: a writer
            # can wait on rows of another subtask's prepared transaction, which commits only
            # once this writer reaches its barrier.  Fail such a wait fast (a transient error:
            # the pipeline restarts from its checkpoint) instead of InnoDB's 50 s default.
            "SET SESSION innodb_lock_wait_timeout = 10",
            # ... and metadata locks (DDL waiting on a table a prepared transaction holds) the
            # same way, instead of lock_wait_timeout's default of a day or a year
            "SET SESSION lock_wait_timeout = 60")
#: Errors about a row's value or a constraint.
_REJECTED = {1048, 1062, 1263, 1264, 1265, 1292, 1366, 1367, 1406, 1411, 1451, 1452, 1690,
             3140, 3819, 4025}
_UNKNOWN_XID = 1397
_CONSTRAINT = re.compile(r"CONSTRAINT `(?:[^`]*\.)?(\w+)`")
#: Bytes of SQL per statement (below every server's default max_allowed_packet).
STATEMENT_BYTES = 4 << 20


def sql_literals(arr: pa.Array, t: DataType) -> pa.Array:
    """A column as SQL literals (``NULL`` for nulls), without per-value Python."""
    arr = arr.combine_chunks() if isinstance(arr, pa.ChunkedArray) else arr
    k = t.kind
    if t.is_integer or k == "DECIMAL":
        text = arr.cast(pa.string())
    elif k == "BOOLEAN":
        text = arr.cast(pa.int8()).cast(pa.string())
    elif k in ("FLOAT", "DOUBLE"):
        # quoted: a NaN becomes an "incorrect value" error naming the column, not bad SQL
        text = quote_sql_strings(arr.cast(pa.string()))
    elif t.is_binary:
        text = hex_text(arr, "X'", "'")
    elif k == "TIME":
        text = quote_sql_strings(time_text(arr))
    elif k in ("TIMESTAMP", "TIMESTAMP_LTZ"):
        text = quote_sql_strings(timestamp_text(arr))
    elif k == "DATE":
        text = quote_sql_strings(arr.cast(pa.string()))
    elif k == "ARRAY":
        text = quote_sql_strings(json_of_lists(arr))
    else:  # strings and JSON text
        text = quote_sql_strings(arr)
    return text.fill_null("NULL") if text.null_count else text


def row_texts(rows: pa.Table, columns: list[Column], open_: str = "(", sep: str = ",",
              close: str = "),", names: list[str] | None = None) -> pa.Array:
    """Each row's SQL text: ``(v1,v2,...),`` by default; with ``names``, ``name=value``
    items (for ``WHERE`` conditions)."""
    lits = [sql_literals(a, c.type) for a, c in zip(rows.columns, columns)]
    if names is not None:
        lits = [pc.binary_join_element_wise(n + "=", v, "") for n, v in zip(names, lits)]
    inner = pc.binary_join_element_wise(*lits, sep) if len(lits) > 1 else lits[0]
    return pc.binary_join_element_wise(open_, inner, close, "")


def chunks(text: pa.Array, limit: int = STATEMENT_BYTES, trailing: int = 1) -> list[bytes]:
    """The concatenated texts in pieces of about ``limit`` bytes, each without its final
    ``trailing`` bytes (the separator after the last row); cut only between rows."""
    text = pa.concat_arrays([text]) if text.offset else text
    offsets = np.frombuffer(text.buffers()[1], dtype=np.int32, count=len(text) + 1)
    data = text.buffers()[2].to_pybytes() if len(text) else b""
    out, start = [], 0
    while start < len(text):
        stop = int(np.searchsorted(offsets, offsets[start] + limit, side="right")) - 1
        stop = max(stop, start + 1)
        out.append(data[offsets[start]:offsets[stop] - trailing])
        start = stop
    return out


class MySqlDialect(Dialect):
    name = "mysql"
    driver_errors = (pymysql.err.MySQLError, OSError)
    transactional_ddl = False
    detach_after_prepare = True
    max_xid = 64
    max_identifier = 64  # characters

    # -- connections and settings ------------------------------------------------------------
    def connect(self, autocommit: bool = False) -> pymysql.Connection:
        # Always autocommit: XA statements delimit the writer's transactions explicitly.
        t = self.target
        try:
            conn = pymysql.connect(host=t.host, port=t.port, user=t.user, password=t.password,
                                   database=t.database, autocommit=True, charset="utf8mb4",
                                   connect_timeout=max(1, int(self.connect_timeout)))
            with conn.cursor() as cur:
                for statement in _SESSION:
                    cur.execute(statement)
        except self.driver_errors as exc:
            raise self.translate(exc, f"can't connect to MySQL at {t.host}:{t.port}/"
                                      f"{t.database} as {t.user}") from None
        return conn

    def check(self, conn: pymysql.Connection, exactly_once: bool) -> None:
        with conn.cursor() as cur:
            cur.execute("SELECT VERSION()")
            version = cur.fetchone()[0]
            if not cur.execute("SELECT 1 FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = "
                               "%s", (self.target.schema,)):
                raise HubError(f"jdbc sink: database {self.target.schema!r} does not exist")
            if not exactly_once:
                return
            m = re.match(r"(\d+)\.(\d+)", version)
            if "mariadb" in version.lower() and m and (int(m[1]), int(m[2])) < (10, 5):
                raise HubError(f"jdbc sink: MariaDB {version} rolls prepared XA transactions back "
                               "when a connection closes; exactly-once needs MariaDB 10.5 or "
                               "later (or set exactly-once = false)")
            try:
                cur.execute("XA RECOVER")
            except pymysql.err.MySQLError as exc:
                if self.is_transient(exc):
                    raise  # a lost connection says nothing about XA: the caller translates it
                raise TerminalError(
                    f"jdbc sink: user {self.target.user!r} may not use XA transactions "
                    f"({exc.args[-1]}); on MySQL 8 grant XA_RECOVER_ADMIN: GRANT "
                    f"XA_RECOVER_ADMIN ON *.* TO '{self.target.user}'@'%'; or set "
                    f"exactly-once = false") from None

    # -- transactions ---------------------------------------------------------------------------
    def _run(self, conn: pymysql.Connection, statement: str, *args: Any) -> None:
        with conn.cursor() as cur:
            cur.execute(statement, args or None)

    def begin(self, conn: pymysql.Connection, xid: str) -> None:
        self._run(conn, "XA START %s", xid)

    def duplicate_xid(self, exc: BaseException) -> bool:
        return isinstance(exc, pymysql.err.MySQLError) and bool(exc.args) and exc.args[0] == 1440

    def prepare(self, conn: pymysql.Connection, xid: str) -> None:
        self._run(conn, "XA END %s", xid)
        self._run(conn, "XA PREPARE %s", xid)

    def commit(self, conn: pymysql.Connection, xid: str) -> None:
        self._run(conn, "XA END %s", xid)
        self._run(conn, "XA COMMIT %s ONE PHASE", xid)

    def rollback(self, conn: pymysql.Connection, xid: str) -> None:
        try:
            self._run(conn, "XA END %s", xid)
        except pymysql.err.MySQLError as exc:
            # already ended (a failed statement may have ended it): roll back anyway
            log.debug("jdbc sink: XA END %s before rollback: %s", xid, self.text(exc))
        self._run(conn, "XA ROLLBACK %s", xid)

    def commit_prepared(self, conn: pymysql.Connection, xid: str) -> bool:
        return self._finish(conn, "XA COMMIT %s", xid)

    def rollback_prepared(self, conn: pymysql.Connection, xid: str) -> bool:
        return self._finish(conn, "XA ROLLBACK %s", xid)

    def _finish(self, conn: pymysql.Connection, statement: str, xid: str) -> bool:
        try:
            self._run(conn, statement, xid)
            return True
        except pymysql.err.MySQLError as exc:
            if not exc.args or exc.args[0] != _UNKNOWN_XID:
                raise
        # MariaDB answers "unknown XID" also while the preparing connection is still
        # attached to it (its close is not processed yet): only a transaction that XA
        # RECOVER does not list either is really finished.
        if xid in self.prepared_xids(conn, xid):
            raise TransientError(f"jdbc sink: prepared transaction {xid} is still attached to "
                                 f"its connection; retrying")
        return False

    def prepared_xids(self, conn: pymysql.Connection, prefix: str) -> list[str]:
        with conn.cursor() as cur:
            cur.execute("XA RECOVER")
            rows = cur.fetchall()
        out = []
        for _fmt, glen, _blen, data in rows:
            gtrid = (data.decode() if isinstance(data, bytes) else data)[:glen]
            if gtrid.startswith(prefix):
                out.append(gtrid)
        return out

    # -- tables -----------------------------------------------------------------------------------
    def quote(self, name: str) -> str:
        return "`" + name.replace("`", "``") + "`"

    def identifier_length(self, name: str) -> int:
        return len(name)

    def column_type(self, t: DataType, is_key: bool) -> str:
        return mysql_type(t, is_key)

    def columns(self, conn: pymysql.Connection, table: TableRef) -> dict[str, bool] | None:
        with conn.cursor() as cur:
            cur.execute("SELECT COLUMN_NAME, IS_NULLABLE FROM information_schema.COLUMNS WHERE "
                        "TABLE_SCHEMA = %s AND TABLE_NAME = %s ORDER BY ORDINAL_POSITION",
                        (table.schema, table.name))
            rows = cur.fetchall()
        return {r[0]: r[1] == "YES" for r in rows} if rows else None

    def default_literal(self, column: Column) -> str:
        literal = quote_sql_strings(pa.array([column.default], pa.string()))[0].as_py()
        # a TEXT column takes only an expression default (MySQL 8.0.13+, MariaDB 10.2+)
        return f"({literal})" if "TEXT" in mysql_type(column.type) else literal

    def alter_type_sql(self, table: TableRef, column: Column, is_key: bool) -> str:
        null = " NOT NULL" if is_key or not column.nullable else " NULL"
        return (f"ALTER TABLE {self.qualified(table)} MODIFY COLUMN {self.quote(column.name)} "
                f"{mysql_type(column.type, is_key)}{null}")

    def drop_not_null_sql(self, table: TableRef, column: Column) -> str:
        return (f"ALTER TABLE {self.qualified(table)} MODIFY COLUMN {self.quote(column.name)} "
                f"{mysql_type(column.type)} NULL")

    def execute_ddl(self, conn: pymysql.Connection, statement: str) -> None:
        self._run(conn, statement)

    # -- data -----------------------------------------------------------------------------------
    def _insert(self, conn: pymysql.Connection, head: str, tail: str, pieces: list[bytes]) -> None:
        # One statement per chunk: a failed statement is rolled back on its own (InnoDB
        # statement atomicity), but earlier chunks stay: undo them through a savepoint.
        with conn.cursor() as cur:
            if len(pieces) > 1:
                cur.execute("SAVEPOINT hub_batch")
            try:
                for piece in pieces:
                    cur.execute(head + piece.decode("utf-8") + tail)
            except pymysql.err.MySQLError:
                if len(pieces) > 1:
                    cur.execute("ROLLBACK TO SAVEPOINT hub_batch")
                raise

    def upsert(self, conn: pymysql.Connection, table: TableRef, columns: list[Column],
               key: tuple[str, ...], rows: pa.Table, tag: str) -> None:
        cols = ", ".join(self.quote(c.name) for c in columns)
        rest = [c.name for c in columns if c.name not in key] or [key[0]]
        update = ", ".join(f"{self.quote(n)} = VALUES({self.quote(n)})" for n in rest)
        self._insert(conn, f"INSERT INTO {self.qualified(table)} ({cols}) VALUES ",
                     f" ON DUPLICATE KEY UPDATE {update}", chunks(row_texts(rows, columns)))

    def delete(self, conn: pymysql.Connection, table: TableRef, key_columns: list[Column],
               keys: pa.Table, tag: str) -> None:
        # The keys as a derived table joined to the target by primary-key lookups (eq_ref,
        # the join order fixed by STRAIGHT_JOIN): the target is never scanned.  A scan waits
        # on the row locks of other subtasks' prepared transactions, which commit only once
        # this subtask reaches its checkpoint barrier.  ``WHERE key IN (...)`` is not enough:
        # once the keys are a sizeable part of the table the optimizer prefers a scan of the
        # primary key, which FORCE INDEX (PRIMARY) allows (MariaDB 10.11: 500 keys of 3,000
        # rows), and MariaDB turns a list of 1,000 keys or more into a scanning join.  The first, empty SELECT names the columns.
        names = [self.quote(c.name) for c in key_columns]
        head = ("DELETE t FROM (SELECT " + ", ".join(f"NULL AS {n}" for n in names)
                + " FROM DUAL WHERE FALSE UNION ALL ")
        tail = (f") AS k STRAIGHT_JOIN {self.qualified(table)} AS t ON "
                + " AND ".join(f"t.{n} = k.{n}" for n in names))
        sep = " UNION ALL "
        pieces = chunks(row_texts(keys, key_columns, "SELECT ", ",", sep), trailing=len(sep))
        self._insert(conn, head, tail, pieces)

    def insert(self, conn: pymysql.Connection, table: TableRef, columns: list[Column],
               rows: pa.Table) -> None:
        cols = ", ".join(self.quote(c.name) for c in columns)
        self._insert(conn, f"INSERT INTO {self.qualified(table)} ({cols}) VALUES ", "",
                     chunks(row_texts(rows, columns)))

    def rejection(self, exc: BaseException, names: Sequence[str] = ()) -> Rejection | None:
        if not isinstance(exc, pymysql.err.MySQLError) or not exc.args:
            return None
        if exc.args[0] not in _REJECTED:
            return None
        message = str(exc.args[-1])
        # "Data too long for column 'c' at row 1", "Column 'c' cannot be null"
        column = named_column(message, names, ("column '{}'", "Column '{}'", "column `{}`"))
        if column is None:
            m = _CONSTRAINT.search(message)
            column = m.group(1) if m else None
        return Rejection(message, column)

    # -- errors: transient or terminal as formats.clients.mysql decides (the source's too) ----
    def translate(self, exc: BaseException, what: str) -> HubError:
        if not isinstance(exc, HubError) and mysql_errors.kind(exc) is mysql_errors.Kind.DENIED:
            return TerminalError(f"jdbc sink: {what}: user {self.target.user!r} lacks a "
                                 f"privilege: {self.text(exc)}")
        return super().translate(exc, what)

    def transient_error(self, exc: BaseException) -> bool:
        return mysql_errors.is_client_error(exc) and mysql_errors.is_transient(exc)

    def text(self, exc: BaseException) -> str:
        if isinstance(exc, pymysql.err.MySQLError) and exc.args:
            return f"{exc.args[-1]} ({exc.args[0]})" if len(exc.args) > 1 else str(exc.args[0])
        return super().text(exc)

    def is_auth_failure(self, exc: BaseException) -> bool:
        return mysql_errors.is_client_error(exc) and \
            mysql_errors.kind(exc) is mysql_errors.Kind.REFUSED
