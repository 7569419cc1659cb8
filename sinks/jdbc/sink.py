"""The JDBC sink factory (``type = "jdbc"``)."""
from __future__ import annotations

import logging
from typing import Any, ClassVar

from runtime.errors import ConfigError, HubError, MissingExtraError
from runtime.rescale import SupportsWriterStateRescale, WriterState
from runtime.sink import Committer, Sink, SinkWriter, WriterContext
from sinks.jdbc.committer import JdbcCommitter
from sinks.jdbc.config import JdbcSinkConfig
from sinks.jdbc.dialect import Dialect

log = logging.getLogger(__name__)

class JdbcSink(Sink, SupportsWriterStateRescale):
    """Change events applied to PostgreSQL or MySQL/MariaDB tables, exactly once.

    Writers (:class:`~sinks.jdbc.writer.JdbcSinkWriter`) write into one transaction per
    subtask and checkpoint and prepare it at the barrier; the committer
    (:class:`~sinks.jdbc.committer.JdbcCommitter`) commits it once the checkpoint is durable.
    Connects nowhere until :meth:`check` or a writer needs it.
    """

    config_class: ClassVar[type[JdbcSinkConfig]] = JdbcSinkConfig

    def __init__(self, config: JdbcSinkConfig):
        self.config = config
        self.target = config.target()

    def dialect(self) -> Dialect:
        """The dialect of the configured URL (imports its driver)."""
        try:
            if self.target.dialect == "postgres":
                from sinks.jdbc.postgres import PostgresDialect

                return PostgresDialect(self.target, self.config.connect_timeout,
                                       self.config.json_type)
            from sinks.jdbc.mysql import MySqlDialect

            return MySqlDialect(self.target, self.config.connect_timeout)
        except ModuleNotFoundError as exc:
            raise MissingExtraError(exc.name or "psycopg", "jdbc") from None

    def check(self) -> None:
        """Connect once and check the server settings 2PC needs; one line when missing.

        A server that can't be reached now is no reason to refuse the pipeline: the check is
        skipped with a warning and the writers' connection attempts fail transiently, so the
        runtime's ``[restart]`` retries until the server is up.  Refused credentials are
        terminal."""
        dialect = self.dialect()
        try:
            conn = dialect.connect()
        except HubError as exc:
            if not exc.transient:
                raise
            log.warning("%s; going on without checking the server settings (the pipeline "
                        "retries connecting as [restart] says)", exc)
            return
        try:
            dialect.check(conn, self.config.exactly_once)
        except dialect.driver_errors as exc:
            error = dialect.translate(exc, "checking the server settings")
            if not error.transient:
                raise error from exc
            log.warning("%s; the check is skipped", error)
        finally:
            try:
                conn.close()
            except dialect.driver_errors:
                log.debug("jdbc sink: closing the check's connection failed", exc_info=True)

    def create_writer(self, context: WriterContext, state: dict[str, Any] | None) -> SinkWriter:
        from sinks.jdbc.writer import JdbcSinkWriter

        return JdbcSinkWriter(self.config, self.dialect(), context, state)

    def create_committer(self) -> Committer:
        return JdbcCommitter(self.dialect())

    def rescale_writer_states(self, states: list[WriterState], parallelism: int
                              ) -> list[WriterState]:
        """Each writer's state is the last checkpoint it prepared (the same for all) plus the
        MySQL schema changes and rows it deferred: those must be applied, in order, by the
        writer that also gets the table's later changes, which another parallelism can't
        promise, so they are refused; without them every new writer starts after the
        highest checkpoint."""
        deferred = sorted({(d.get("change") or d.get("schema") or {}).get("table", "?")
                           for s in states if s for d in s.get("deferred", ())})
        if deferred:
            raise ConfigError(
                f"the jdbc sink's writers hold schema changes (and the rows after them) of "
                f"{', '.join(deferred)} not yet applied, which only the same {len(states)} "
                f"writers can apply in order: resume with parallelism {len(states)}, let a "
                f"checkpoint complete, then change it", key="pipeline.parallelism")
        last = max(((s or {}).get("checkpoint", 0) for s in states), default=0)
        return [{"checkpoint": last} for _ in range(parallelism)]
