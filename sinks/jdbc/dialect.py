"""The plug point per database: one :class:`Dialect` for PostgreSQL, one for MySQL/MariaDB.

A dialect knows how to connect, how to run a transaction in two phases, how to describe and
change tables, and how to write a batch of upserts and deletes fast.  The writer and the
committer hold the logic common to all databases (buffering, collapsing, schema-evolution
modes, rejected-row handling, recovery) and call only this interface.
"""
from __future__ import annotations

import functools
import hashlib
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, TypeVar

import pyarrow as pa

from runtime.errors import HubError, TerminalError, TransientError
from runtime.schema import Column
from runtime.types import DataType
from sinks.jdbc.config import Target


#: Logical types whose columns get a default when added (MySQL has no literal defaults for
#: BLOB, TEXT and JSON columns: those never carry one).
DEFAULTABLE = frozenset({"BOOLEAN", "TINYINT", "SMALLINT", "INT", "BIGINT", "DECIMAL", "FLOAT",
                         "DOUBLE", "CHAR", "VARCHAR", "STRING", "DATE", "TIME", "TIMESTAMP",
                         "TIMESTAMP_LTZ"})


@dataclass(frozen=True)
class TableRef:
    """A target table: schema (PostgreSQL) or database (MySQL) and name."""

    schema: str
    name: str

    def __str__(self) -> str:
        return f"{self.schema}.{self.name}"


@dataclass(frozen=True)
class Rejection:
    """What a database said about a row it refused: its message and, when it names one, the
    column."""

    message: str
    column: str | None


class Dialect(ABC):
    """SQL and protocol of one database family.

    Connections are the driver's own objects.  Data methods run inside the transaction the
    writer opened with :meth:`begin` and raise the driver's exception on failure;
    :meth:`rejection` tells a refused row (bad value, constraint) from everything else.
    """

    name: ClassVar[str]
    #: The client library's exceptions (and socket errors): what :meth:`translate` handles.
    driver_errors: ClassVar[tuple[type[BaseException], ...]]
    #: Whether DDL can run inside the two-phase transaction (PostgreSQL yes, MySQL no).
    transactional_ddl: ClassVar[bool]
    #: Whether the writer must close its connection after :meth:`prepare` so that other
    #: connections can finish the prepared transaction (MariaDB keeps it attached).
    detach_after_prepare: ClassVar[bool] = False
    #: Longest transaction id the database accepts.
    max_xid: ClassVar[int]
    #: Longest table or column name the database keeps (PostgreSQL cuts longer ones, MySQL
    #: refuses them), in the unit of :meth:`identifier_length`.
    max_identifier: ClassVar[int]

    def __init__(self, target: Target, connect_timeout: float):
        self.target = target
        self.connect_timeout = connect_timeout

    # -- errors -----------------------------------------------------------------------------------
    def translate(self, exc: BaseException, what: str) -> HubError:
        """The one translation of this client's errors: ``exc`` (raised while doing ``what``)
        as a one-line :class:`TransientError` (lost connection, server shutting down or not
        up yet, deadlock: redone after a restart) or :class:`TerminalError` (refused
        credentials, bad SQL, missing privilege).  Every call path of the sink (writer,
        committer, recovery, connecting) raises what this returns."""
        if isinstance(exc, HubError):
            return exc
        t = self.target
        if self.is_auth_failure(exc):
            return TerminalError(f"jdbc sink: {self.name} at {t.host}:{t.port} refused user "
                                 f"{t.user!r} (database {t.database!r}): {self.text(exc)}")
        message = f"jdbc sink: {what}: {self.text(exc)}"
        if self.is_transient(exc):
            return TransientError(message)
        return TerminalError(message)

    def is_transient(self, exc: BaseException) -> bool:
        """The one decision whether a failure is worth redoing (what :meth:`translate` marks
        transient): a socket error always, a driver error when :meth:`transient_error` says
        so (a lost connection, a deadlock)."""
        return isinstance(exc, OSError) or self.transient_error(exc)

    def text(self, exc: BaseException) -> str:
        """One line of what the client said."""
        return first_line(exc)

    @abstractmethod
    def is_auth_failure(self, exc: BaseException) -> bool:
        """The server refused the user, its password or its access to the database."""

    # -- connections and settings ------------------------------------------------------------
    @abstractmethod
    def connect(self, autocommit: bool = False) -> Any:
        """A new connection: for the writer (``autocommit`` False: statements join the open
        transaction), or for the committer (True: second-phase statements run alone).  Raises
        what :meth:`translate` makes of the failure: :class:`TransientError` when the server
        can't be reached, :class:`TerminalError` when it refuses the user."""

    @abstractmethod
    def check(self, conn: Any, exactly_once: bool) -> None:
        """Raise a one-line :class:`~runtime.errors.HubError` when a server setting or
        privilege the sink needs is missing (prepared transactions, XA)."""

    # -- transactions ---------------------------------------------------------------------------
    def xid(self, pipeline: str, subtask: int, checkpoint: int, serial: int = 0) -> str:
        """Transaction id of a writer's transaction for a checkpoint: ``hub:<pipeline>:
        <subtask>:<checkpoint>`` (``.serial`` when one checkpoint needed several)."""
        # xid_prefix leaves 30 characters for the rest: enough for any subtask and checkpoint
        return f"{self.xid_prefix(pipeline)}{subtask}:{checkpoint}" + (f".{serial}" if serial else "")

    def xid_prefix(self, pipeline: str) -> str:
        """What every transaction id of ``pipeline`` starts with (long names are hashed)."""
        if len(pipeline) > self.max_xid - 30:
            pipeline = pipeline[:12] + hashlib.sha1(pipeline.encode()).hexdigest()[:12]
        return f"hub:{pipeline}:"

    @abstractmethod
    def begin(self, conn: Any, xid: str) -> None:
        """Start the transaction that the next data and (transactional) DDL belong to."""

    def duplicate_xid(self, exc: BaseException) -> bool:
        """:meth:`begin` failed because a prepared transaction has that id already."""
        return False

    @abstractmethod
    def prepare(self, conn: Any, xid: str) -> None:
        """First phase: make the open transaction durable under ``xid``; the connection is
        free for a new transaction afterwards."""

    @abstractmethod
    def commit(self, conn: Any, xid: str) -> None:
        """Commit the open transaction in one phase."""

    @abstractmethod
    def rollback(self, conn: Any, xid: str) -> None:
        """Roll back the open (not prepared) transaction."""

    @abstractmethod
    def commit_prepared(self, conn: Any, xid: str) -> bool:
        """Second phase.  Returns False when no prepared transaction ``xid`` exists (it was
        committed before: commit is idempotent)."""

    @abstractmethod
    def rollback_prepared(self, conn: Any, xid: str) -> bool:
        """Roll back prepared transaction ``xid``; False when it does not exist."""

    @abstractmethod
    def prepared_xids(self, conn: Any, prefix: str) -> list[str]:
        """Ids of the prepared transactions starting with ``prefix``."""

    # -- tables -----------------------------------------------------------------------------------
    @abstractmethod
    def quote(self, name: str) -> str:
        """An identifier, quoted: any text (dots, quotes, semicolons, spaces) is one name."""

    @abstractmethod
    def identifier_length(self, name: str) -> int:
        """How long ``name`` is for the database's identifier limit (bytes or characters)."""

    def identifier_problem(self, name: str) -> str | None:
        """Why ``name`` can't be a column name here (None when it can): the database would cut
        a longer name, so two names could become one column."""
        if not name:
            return "is empty"
        n = self.identifier_length(name)
        if n > self.max_identifier:
            unit = "bytes" if self.name == "postgres" else "characters"
            return f"is {n} {unit} long, but {self.name} keeps only {self.max_identifier}"
        return None

    def short_name(self, name: str) -> str:
        """``name`` as a table name the database keeps whole: unchanged when it fits, else
        cut to leave room for ``_`` and the first 8 hex digits of the SHA-1 of the whole name
        (UTF-8), which keep two long names that share their beginning apart."""
        if self.identifier_length(name) <= self.max_identifier:
            return name
        suffix = "_" + hashlib.sha1(name.encode("utf-8")).hexdigest()[:8]
        room = self.max_identifier - len(suffix)
        head = name
        while self.identifier_length(head) > room:  # whole characters, never half a UTF-8 one
            head = head[:-1]
        return head + suffix

    def qualified(self, table: TableRef) -> str:
        return f"{self.quote(table.schema)}.{self.quote(table.name)}"

    @abstractmethod
    def column_type(self, t: DataType, is_key: bool) -> str:
        """The SQL type a column of logical type ``t`` is created with."""

    @abstractmethod
    def columns(self, conn: Any, table: TableRef) -> dict[str, bool] | None:
        """The table's columns (name -> nullable) in order, None when it does not exist."""

    def create_table_sql(self, table: TableRef, columns: tuple[Column, ...],
                         key: tuple[str, ...]) -> str:
        parts = []
        for c in columns:
            null = " NOT NULL" if (c.name in key or not c.nullable) else ""
            parts.append(f"{self.quote(c.name)} {self.column_type(c.type, c.name in key)}{null}")
        if key:
            parts.append(f"PRIMARY KEY ({', '.join(self.quote(k) for k in key)})")
        return f"CREATE TABLE IF NOT EXISTS {self.qualified(table)} ({', '.join(parts)})"

    def add_column_sql(self, table: TableRef, column: Column) -> str:
        """Add ``column``; with its default (and NOT NULL) when it has one, so that rows that
        existed before read what they read at the source."""
        sql = (f"ALTER TABLE {self.qualified(table)} ADD COLUMN {self.quote(column.name)} "
               f"{self.column_type(column.type, False)}")
        if column.default is not None and column.type.kind in DEFAULTABLE:
            sql += f" DEFAULT {self.default_literal(column)}"
            if not column.nullable:
                sql += " NOT NULL"
        return sql

    @abstractmethod
    def default_literal(self, column: Column) -> str:
        """``column.default`` (the text of a constant) as a literal of the column's type."""

    def drop_column_sql(self, table: TableRef, name: str) -> str:
        return f"ALTER TABLE {self.qualified(table)} DROP COLUMN {self.quote(name)}"

    def rename_column_sql(self, table: TableRef, old: str, new: str) -> str:
        return (f"ALTER TABLE {self.qualified(table)} RENAME COLUMN {self.quote(old)} TO "
                f"{self.quote(new)}")

    @abstractmethod
    def alter_type_sql(self, table: TableRef, column: Column, is_key: bool) -> str:
        """Change the column's type to ``column.type`` (keeping NOT NULL of key columns)."""

    @abstractmethod
    def drop_not_null_sql(self, table: TableRef, column: Column) -> str:
        """Make the column nullable."""

    def truncate_sql(self, table: TableRef) -> str:
        return f"TRUNCATE TABLE {self.qualified(table)}"

    def drop_table_sql(self, table: TableRef) -> str:
        return f"DROP TABLE IF EXISTS {self.qualified(table)}"

    @abstractmethod
    def execute_ddl(self, conn: Any, sql: str) -> None:
        """Run one DDL statement.  With transactional DDL it joins the open transaction and a
        failure leaves that transaction usable."""

    # -- data -----------------------------------------------------------------------------------
    @abstractmethod
    def upsert(self, conn: Any, table: TableRef, columns: list[Column], key: tuple[str, ...],
               rows: pa.Table, tag: str) -> None:
        """Insert ``rows`` or update the rows with their keys (keys are unique in ``rows``).
        ``tag`` is unique per writer transaction (for helper objects such as staging tables).
        A failure leaves the transaction usable (and nothing of ``rows`` applied)."""

    @abstractmethod
    def delete(self, conn: Any, table: TableRef, key_columns: list[Column], keys: pa.Table,
               tag: str) -> None:
        """Delete the rows with the keys in ``keys`` (columns ``key_columns``).  Same failure
        contract as :meth:`upsert`."""

    @abstractmethod
    def insert(self, conn: Any, table: TableRef, columns: list[Column], rows: pa.Table) -> None:
        """Plain insert (append mode).  Same failure contract as :meth:`upsert`."""

    #: Whether :meth:`insert_new` is a fast path (else the writer never calls it).
    copies_new_rows: ClassVar[bool] = False

    def insert_new(self, conn: Any, table: TableRef, columns: list[Column],
                   rows: pa.Table) -> bool:
        """Insert ``rows`` whose keys are believed new to ``table`` (snapshot reads) the
        fastest way the database has, inside the open transaction.  Returns False, with
        nothing of ``rows`` applied and the transaction usable, when a key exists already
        or the target can't take that path (the caller upserts them instead); raises like
        :meth:`upsert` otherwise.  The writer calls it only where :attr:`copies_new_rows`
        is True; a database without such a path keeps this default (nothing applied)."""
        return False

    @abstractmethod
    def rejection(self, exc: BaseException, names: Sequence[str] = ()) -> Rejection | None:
        """The database refused a row's value or a constraint (the batch can be bisected to
        find the row); None for any other failure.  ``names`` are the columns written: the
        column the message names is one of them (names may hold any character)."""

    @abstractmethod
    def transient_error(self, exc: BaseException) -> bool:
        """A driver error meaning a lost connection, deadlock or similar: the work may succeed
        when redone.  Only :meth:`is_transient` asks."""


F = TypeVar("F", bound=Callable[..., Any])


def translated(what: str) -> Callable[[F], F]:
    """Decorate a method of an object with a ``_dialect``: the client's exceptions it raises
    leave it translated by :meth:`Dialect.translate` (dlt's ``raise_database_error``)."""

    def decorate(fn: F) -> F:
        @functools.wraps(fn)
        def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
            try:
                return fn(self, *args, **kwargs)
            except HubError:
                raise
            except self._dialect.driver_errors as exc:
                raise self._dialect.translate(exc, what) from exc

        return wrapper  # type: ignore[return-value]

    return decorate


def named_column(text: str, names: Sequence[str], forms: Sequence[str]) -> str | None:
    """The longest of ``names`` that ``text`` mentions in one of ``forms`` (``"{}"`` is the
    name): a regex for words would cut a name with spaces or quotes in it."""
    hits = [n for n in names if any(f.format(n) in text for f in forms)]
    return max(hits, key=len) if hits else None


def first_line(exc: BaseException) -> str:
    """The first line of an exception's text (drivers add hints on further lines)."""
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]
