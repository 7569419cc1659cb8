"""Options of the JDBC sink (``type = "jdbc"``)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Literal
from urllib.parse import unquote, urlparse

from pydantic import Field, SecretStr, field_validator

from runtime.config import ConnectorConfig, Duration

#: URL schemes by dialect.  ``jdbc:`` in front is accepted and ignored.
SCHEMES = {"postgresql": "postgres", "postgres": "postgres", "mysql": "mysql",
           "mariadb": "mysql"}
DEFAULT_PORTS = {"postgres": 5432, "mysql": 3306}

SchemaEvolution = Literal["evolve", "try-evolve", "lenient", "ignore", "exception"]


@dataclass(frozen=True)
class Target:
    """Where the sink writes: the parsed URL plus credentials."""

    dialect: str  # "postgres" or "mysql"
    host: str
    port: int
    database: str
    user: str
    password: str
    #: PostgreSQL schema, or MySQL database, that holds the tables.
    schema: str


class JdbcSinkConfig(ConnectorConfig):
    """Typed options of ``type = "jdbc"``.

    ``url`` picks the dialect (``postgresql://`` or ``mysql://``/``mariadb://``); user and
    password may be in the URL or in ``username``/``password`` (these win).
    """

    summary: ClassVar[str] = ("Upserts into PostgreSQL or MySQL/MariaDB tables, exactly once "
                              "(two-phase commit)")

    url: str = Field(description="postgresql://host:5432/db or mysql://host:3306/db "
                                 "(mariadb:// too; a leading jdbc: is ignored).")
    username: str | None = Field(None, description="User; default: the one in the URL.")
    password: SecretStr | None = Field(None, description="Password; use ${ENV} interpolation.")
    schema_: str | None = Field(None, alias="schema", description=(
        "PostgreSQL schema (default public) or MySQL database (default: the URL's) of the "
        "tables."))
    table_name: str = Field("{table}", description=(
        "Target table name template: {table} is the source table name, {db} its database.  "
        "Names are used as they are (quoted: any character is safe).  A table name longer "
        "than the target keeps (PostgreSQL 63 bytes, MySQL 64 characters) is shortened to "
        "its beginning, '_' and the first 8 hex digits of the SHA-1 of the whole name (UTF-8), "
        "so that two long names stay two tables (a warning names it).  A column name that "
        "long, or two source tables with one target table, stop the pipeline with an error "
        "naming them when the table first appears."))
    write_mode: Literal["upsert", "append"] = Field("upsert", description=(
        "upsert: insert/update/delete by primary key; append: insert every non-delete row "
        "image, deletes are dropped."))
    batch_size: int = Field(50_000, ge=1, description=(
        "Rows buffered per table before they are written into the open transaction."))
    flush_interval: Duration = Field("5s", validate_default=True, description=(
        "Buffered rows older than this are written at the next write; everything is "
        "written and prepared at each checkpoint."))
    auto_create: bool = Field(True, description=(
        "Create missing tables from the event schema, with its primary key."))
    schema_evolution: SchemaEvolution = Field("evolve", description=(
        "evolve: apply add/drop/rename column, type change, truncate, drop table; "
        "try-evolve: apply, and go on without the change when the database refuses it; "
        "lenient: never lose data (no drops, renames add a column, only widening type "
        "changes); ignore: keep the table as it is, write the columns it has; "
        "exception: stop on any schema change.  An added column keeps its default (and NOT "
        "NULL), so rows that existed before read what they read at the source.  On MySQL/"
        "MariaDB a change of a table the open XA transaction wrote to waits (with that "
        "table's later rows, in the checkpoint) until that transaction committed: DDL can't "
        "join it, and never commits it early."))
    exactly_once: bool = Field(True, description=(
        "Two-phase commit (PREPARE TRANSACTION / XA).  false: commit at each checkpoint "
        "(at-least-once; for servers without prepared transactions)."))
    json_type: Literal["jsonb", "json"] = Field("jsonb", description=(
        "PostgreSQL column type of JSON columns: jsonb (indexable; PostgreSQL normalises the "
        "text: key order, duplicate keys, whitespace, number spelling) or json (the text "
        "kept exactly as written at the source).  MySQL/MariaDB targets ignore it."))
    snapshot_copy: bool = Field(True, description=(
        "PostgreSQL: write snapshot rows (op r) with COPY straight into the target table "
        "inside the checkpoint's transaction; rows whose key exists already (a non-empty "
        "target) fall back to the upsert path.  false: always upsert."))
    connect_timeout: Duration = Field("10s", validate_default=True,
                                      description="Timeout of a connection attempt.")

    @field_validator("url")
    @classmethod
    def _check_url(cls, v: str) -> str:
        parse_url(v)
        return v

    @field_validator("table_name")
    @classmethod
    def _check_template(cls, v: str) -> str:
        try:
            v.format(table="t", db="d")
        except (KeyError, IndexError, ValueError):
            raise ValueError("table-name may only use the placeholders {table} and {db}, "
                             f"got {v!r}") from None
        return v

    def target(self) -> Target:
        dialect, host, port, database, user, password = parse_url(self.url)
        user = self.username or user
        if self.password is not None:
            password = self.password.get_secret_value()
        schema = self.schema_ or ("public" if dialect == "postgres" else database)
        return Target(dialect, host, port, database, user, password, schema)


def parse_url(url: str) -> tuple[str, str, int, str, str, str]:
    """``(dialect, host, port, database, user, password)``; ValueError naming what is wrong."""
    text = url.removeprefix("jdbc:")
    u = urlparse(text)
    dialect = SCHEMES.get(u.scheme.lower())
    if dialect is None:
        raise ValueError(f"url must start with postgresql://, mysql:// or mariadb://, got "
                         f"{u.scheme + '://' if u.scheme else url!r}")
    if not u.hostname:
        raise ValueError("url names no host")
    database = unquote(u.path.lstrip("/"))
    if not database:
        raise ValueError("url names no database (…/dbname)")
    try:
        port = u.port or DEFAULT_PORTS[dialect]
    except ValueError:
        raise ValueError("url has a bad port") from None
    default_user = "postgres" if dialect == "postgres" else "root"
    return (dialect, u.hostname, port, database, unquote(u.username or default_user),
            unquote(u.password or ""))
