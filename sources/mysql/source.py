"""The MySQL/MariaDB CDC source factory (``type = "mysql"``)."""
from __future__ import annotations

from typing import Any, ClassVar

from runtime.source import EnumeratorContext, ReaderContext, Source, SourceReader, SplitEnumerator
from sources.mysql.config import MySqlSourceConfig
from sources.mysql.split import MySqlSplit


class MySqlSource(Source):
    """Every table matching ``tables``: its rows (op ``r``, by primary-key chunks read in
    parallel without locks), then its changes from the binlog (``c``/``u``/``d`` with before
    images, ``ts_ms`` = commit time), exactly once across restarts.  Bounded only with
    ``startup-mode = "initial-only"``."""

    config_class: ClassVar = MySqlSourceConfig
    split_type: ClassVar = MySqlSplit

    def __init__(self, config: MySqlSourceConfig):
        import pymysql  # noqa: F401 - fail early, with the extra to install, when missing

        self.config = config
        self._server_ids: list[int] | None = None

    @property
    def bounded(self) -> bool:
        return self.config.startup_mode == "initial-only"

    def create_enumerator(self, context: EnumeratorContext,
                          state: dict[str, Any] | None) -> SplitEnumerator:
        from sources.mysql.enumerator import MySqlEnumerator

        return MySqlEnumerator(context, self.config, state)

    def create_reader(self, context: ReaderContext) -> SourceReader:
        from sources.mysql.reader import MySqlReader

        if self._server_ids is None or len(self._server_ids) < context.parallelism:
            self._server_ids = self.config.server_ids(context.parallelism)
        return MySqlReader(context, self.config, self._server_ids[context.subtask])
