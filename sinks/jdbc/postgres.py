"""PostgreSQL: COPY (CSV, built by Arrow) into a staging table, then ``INSERT ... ON CONFLICT``
and ``DELETE ... USING``; snapshot rows (new keys) by COPY straight into the target; two-phase
commit with ``PREPARE TRANSACTION``.

The staging table is an UNLOGGED table created and dropped inside the writer's transaction:
PostgreSQL refuses to ``PREPARE`` a transaction that touched a temporary table.  Its name is
unique per transaction, so it never waits on the catalog rows of a prepared transaction.
CSV rather than binary COPY: Arrow renders a whole column in C++, where binary COPY would need
a Python call per value; text input also parses JSON into jsonb objects (binary COPY of a
JSON string would store a quoted string).
"""
from __future__ import annotations

import io
import re
from collections.abc import Sequence

import pyarrow as pa
import pyarrow.csv as pacsv
import psycopg
from psycopg import errors as pgerr, sql

from runtime.errors import HubError
from runtime.schema import Column
from runtime.types import DataType
from sinks.jdbc.config import Target
from sinks.jdbc.dialect import Dialect, Rejection, TableRef, first_line, named_column
from sinks.jdbc.types import hex_text, pg_array_text, postgres_type, time_text

#: SQLSTATE classes worth retrying: connection exception, transaction rollback (serialization
#: failure, deadlock), insufficient resources, operator intervention (shutdown, cannot connect
#: now), system error.
_TRANSIENT_CLASSES = ("08", "40", "53", "57", "58")
#: What libpq says when the server refuses a login (connection errors carry no SQLSTATE):
#: 28P01 invalid_password and 28000 invalid_authorization_specification, 3D000 no database.
_AUTH_FAILURE = re.compile(r"password authentication failed|role \".*\" does not exist|"
                           r"no pg_hba\.conf entry|database \".*\" does not exist|"
                           r"authentication failed|password is required|"
                           r"permission denied for database")
_CSV = pacsv.WriteOptions(include_header=False)


def csv_payload(rows: pa.Table, columns: list[Column]) -> bytes:
    """``rows`` as PostgreSQL COPY CSV: nulls unquoted-empty, strings always quoted."""
    arrays = []
    for col, arr in zip(columns, rows.columns):
        arr = arr.combine_chunks() if isinstance(arr, pa.ChunkedArray) else arr
        k = col.type.kind
        if col.type.is_binary:
            arr = hex_text(arr, "\\x")
        elif k == "TIME":
            arr = time_text(arr)
        elif k == "ARRAY":
            arr = pg_array_text(arr)
        arrays.append(arr)
    buf = io.BytesIO()
    pacsv.write_csv(pa.table(arrays, names=[f"c{i}" for i in range(len(arrays))]), buf, _CSV)
    return buf.getvalue()


class PostgresDialect(Dialect):
    name = "postgres"
    driver_errors = (psycopg.Error, OSError)
    transactional_ddl = True
    max_xid = 200
    max_identifier = 63  # NAMEDATALEN - 1 bytes: longer names are silently cut
    copies_new_rows = True
    #: column type of JSON: jsonb, or json (keeps the text as written): option json-type
    json_type = "jsonb"

    def __init__(self, target: Target, connect_timeout: float, json_type: str = "jsonb"):
        super().__init__(target, connect_timeout)
        self.json_type = json_type

    # -- connections and settings ------------------------------------------------------------
    def connect(self, autocommit: bool = False) -> psycopg.Connection:
        t = self.target
        try:
            return psycopg.connect(host=t.host, port=t.port, dbname=t.database, user=t.user,
                                   password=t.password or None, autocommit=autocommit,
                                   connect_timeout=max(1, int(self.connect_timeout)),
                                   options="-c TimeZone=UTC")
        except self.driver_errors as exc:
            raise self.translate(exc, f"can't connect to PostgreSQL at {t.host}:{t.port}/"
                                      f"{t.database} as {t.user}") from None

    def check(self, conn: psycopg.Connection, exactly_once: bool) -> None:
        with conn.transaction():
            n = int(conn.execute("SHOW max_prepared_transactions").fetchone()[0])
            schema_ok = conn.execute("SELECT 1 FROM pg_namespace WHERE nspname = %s",
                                     (self.target.schema,)).fetchone()
        if exactly_once and n == 0:
            raise HubError(
                "jdbc sink: PostgreSQL has max_prepared_transactions = 0, but exactly-once needs "
                "prepared transactions: set max_prepared_transactions to at least the sink "
                "parallelism (e.g. 64) in postgresql.conf and restart the server, or set "
                "exactly-once = false")
        if not schema_ok:
            raise HubError(f"jdbc sink: schema {self.target.schema!r} does not exist in "
                           f"database {self.target.database!r}")

    # -- transactions ---------------------------------------------------------------------------
    def begin(self, conn: psycopg.Connection, xid: str) -> None:
        # psycopg sends BEGIN before the first statement.  The transaction must be open
        # before anything uses conn.transaction(), which would otherwise BEGIN and COMMIT
        # on its own instead of making a savepoint.
        conn.execute("SELECT 1")

    def prepare(self, conn: psycopg.Connection, xid: str) -> None:
        conn.execute(sql.SQL("PREPARE TRANSACTION {}").format(sql.Literal(xid)))

    def commit(self, conn: psycopg.Connection, xid: str) -> None:
        conn.commit()

    def rollback(self, conn: psycopg.Connection, xid: str) -> None:
        conn.rollback()

    def commit_prepared(self, conn: psycopg.Connection, xid: str) -> bool:
        return self._finish(conn, "COMMIT PREPARED", xid)

    def rollback_prepared(self, conn: psycopg.Connection, xid: str) -> bool:
        return self._finish(conn, "ROLLBACK PREPARED", xid)

    @staticmethod
    def _finish(conn: psycopg.Connection, verb: str, xid: str) -> bool:
        # COMMIT PREPARED can't run in a transaction block: the committer's connection is
        # in autocommit mode.
        try:
            conn.execute(sql.SQL(verb + " {}").format(sql.Literal(xid)))
            return True
        except pgerr.UndefinedObject:
            return False

    def prepared_xids(self, conn: psycopg.Connection, prefix: str) -> list[str]:
        rows = conn.execute("SELECT gid FROM pg_prepared_xacts WHERE database = "
                            "current_database() AND starts_with(gid, %s) ORDER BY prepared",
                            (prefix,)).fetchall()
        return [r[0] for r in rows]

    # -- tables -----------------------------------------------------------------------------------
    def quote(self, name: str) -> str:
        return '"' + name.replace('"', '""') + '"'

    def identifier_length(self, name: str) -> int:
        return len(name.encode("utf-8"))

    def column_type(self, t: DataType, is_key: bool) -> str:
        return postgres_type(t, self.json_type)

    def columns(self, conn: psycopg.Connection, table: TableRef) -> dict[str, bool] | None:
        rows = conn.execute(
            "SELECT a.attname, NOT a.attnotnull FROM pg_attribute a JOIN pg_class c ON "
            "c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace WHERE "
            "n.nspname = %s AND c.relname = %s AND a.attnum > 0 AND NOT a.attisdropped "
            "ORDER BY a.attnum", (table.schema, table.name)).fetchall()
        return {r[0]: r[1] for r in rows} if rows else None

    def default_literal(self, column: Column) -> str:
        return f"{sql.Literal(column.default).as_string(None)}::{postgres_type(column.type)}"

    def alter_type_sql(self, table: TableRef, column: Column, is_key: bool) -> str:
        t = postgres_type(column.type, self.json_type)
        q = self.quote(column.name)
        return f"ALTER TABLE {self.qualified(table)} ALTER COLUMN {q} TYPE {t} USING {q}::{t}"

    def drop_not_null_sql(self, table: TableRef, column: Column) -> str:
        return (f"ALTER TABLE {self.qualified(table)} ALTER COLUMN {self.quote(column.name)} "
                f"DROP NOT NULL")

    def execute_ddl(self, conn: psycopg.Connection, statement: str) -> None:
        with conn.transaction():  # a savepoint: a refused DDL leaves the transaction usable
            conn.execute(statement)

    # -- data -----------------------------------------------------------------------------------
    def _stage(self, conn: psycopg.Connection, table: TableRef, names: list[str], tag: str,
               payload: bytes) -> str:
        stage = self.qualified(TableRef(table.schema, f"_hub_stage_{tag}"))
        cols = ", ".join(self.quote(n) for n in names)
        conn.execute(f"CREATE UNLOGGED TABLE {stage} AS SELECT {cols} FROM "
                     f"{self.qualified(table)} WITH NO DATA")
        with conn.cursor().copy(f"COPY {stage} ({cols}) FROM STDIN (FORMAT csv)") as copy:
            copy.write(payload)
        return stage

    def upsert(self, conn: psycopg.Connection, table: TableRef, columns: list[Column],
               key: tuple[str, ...], rows: pa.Table, tag: str) -> None:
        names = [c.name for c in columns]
        payload = csv_payload(rows, columns)
        with conn.transaction():
            stage = self._stage(conn, table, names, tag, payload)
            cols = ", ".join(self.quote(n) for n in names)
            rest = [n for n in names if n not in key]
            action = ("DO UPDATE SET " + ", ".join(f"{self.quote(n)} = EXCLUDED.{self.quote(n)}"
                                                   for n in rest)) if rest else "DO NOTHING"
            conn.execute(f"INSERT INTO {self.qualified(table)} ({cols}) SELECT {cols} FROM "
                         f"{stage} ON CONFLICT ({', '.join(self.quote(k) for k in key)}) {action}")
            conn.execute(f"DROP TABLE {stage}")

    def delete(self, conn: psycopg.Connection, table: TableRef, key_columns: list[Column],
               keys: pa.Table, tag: str) -> None:
        key = [c.name for c in key_columns]
        payload = csv_payload(keys, key_columns)
        with conn.transaction():
            stage = self._stage(conn, table, key, tag, payload)
            cond = " AND ".join(f"t.{self.quote(k)} = s.{self.quote(k)}" for k in key)
            conn.execute(f"DELETE FROM {self.qualified(table)} t USING {stage} s WHERE {cond}")
            conn.execute(f"DROP TABLE {stage}")

    def insert(self, conn: psycopg.Connection, table: TableRef, columns: list[Column],
               rows: pa.Table) -> None:
        cols = ", ".join(self.quote(c.name) for c in columns)
        payload = csv_payload(rows, columns)
        with conn.transaction():
            with conn.cursor().copy(f"COPY {self.qualified(table)} ({cols}) FROM STDIN "
                                    f"(FORMAT csv)") as copy:
                copy.write(payload)

    def insert_new(self, conn: psycopg.Connection, table: TableRef, columns: list[Column],
                   rows: pa.Table) -> bool:
        # COPY straight into the target, in a savepoint: a key that exists already makes
        # the whole COPY fail (unique_violation) and the savepoint undoes what it wrote.
        cols = ", ".join(self.quote(c.name) for c in columns)
        payload = csv_payload(rows, columns)
        try:
            with conn.transaction():
                with conn.cursor().copy(f"COPY {self.qualified(table)} ({cols}) FROM STDIN "
                                        f"(FORMAT csv)") as copy:
                    copy.write(payload)
        except (pgerr.UniqueViolation, pgerr.WrongObjectType):
            return False  # a key exists, or the target is a view (COPY can't fill one)
        return True

    def rejection(self, exc: BaseException, names: Sequence[str] = ()) -> Rejection | None:
        if not isinstance(exc, (pgerr.DataError, pgerr.IntegrityError)):
            return None
        diag = exc.diag
        column = diag.column_name
        if column is None and diag.context:
            # COPY's context: 'COPY <table>, line 1, column <name>: "<value>"'
            column = named_column(diag.context + "\n", names, (", column {}: ", ", column {}\n"))
        message = first_line(exc)
        if diag.message_detail:
            message += f" ({diag.message_detail})"
        return Rejection(message, column)

    def transient_error(self, exc: BaseException) -> bool:
        if not isinstance(exc, psycopg.Error):
            return False
        state = exc.sqlstate
        if state is None:
            # raised by the client: a lost or closed connection, a failed connection attempt
            # (refusals of a login are told apart by is_auth_failure)
            return isinstance(exc, psycopg.OperationalError)
        return state[:2] in _TRANSIENT_CLASSES or state == "55P03"  # lock_not_available

    def is_auth_failure(self, exc: BaseException) -> bool:
        if not isinstance(exc, psycopg.Error):
            return False
        if exc.sqlstate in ("28P01", "28000", "3D000"):
            return True
        return exc.sqlstate is None and bool(_AUTH_FAILURE.search(str(exc)))
