"""The datagen source factory."""
from __future__ import annotations

import time
from datetime import datetime, timezone
from typing import Any, ClassVar

from runtime.errors import ConfigError
from runtime.source import EnumeratorContext, ReaderContext, Source, SplitEnumerator, SourceReader
from runtime.schema import TableSchema
from sources.datagen.config import DatagenConfig
from sources.datagen.enumerator import DatagenEnumerator
from sources.datagen.generator import RowGenerator
from sources.datagen.split import DatagenSplit
from sources.datagen.tables import custom_schema, template_schema


class DatagenSource(Source):
    """Generated change data: typed tables, unique keys, deterministic by seed."""

    config_class: ClassVar = DatagenConfig
    split_type: ClassVar = DatagenSplit

    def __init__(self, config: DatagenConfig):
        self.config = config
        self.tables: dict[str, tuple[TableSchema, Any]] = {}
        if config.columns is not None:
            schema, specs = custom_schema(config.database, config.table, config.columns,
                                          config.primary_key)
            self.tables[schema.table] = (schema, specs)
        else:
            for name in config.tables:
                schema, specs = template_schema(config.database, name)
                self.tables[schema.table] = (schema, specs)

    @property
    def bounded(self) -> bool:
        return self.config.rows is not None

    def schemas(self) -> list[TableSchema]:
        return [s for s, _ in self.tables.values()]

    def _start_ms(self) -> int:
        text = self.config.event_time_start
        if text == "now":
            return int(time.time() * 1000)
        try:
            dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            raise ConfigError(f"not an ISO-8601 time or \"now\": {text!r}",
                              key="event-time-start") from None
        if dt.tzinfo is None:
            dt = dt.replace(tzinfo=timezone.utc)
        return int(dt.timestamp() * 1000)

    def _splits_per_table(self, parallelism: int) -> int:
        return self.config.splits or parallelism

    def create_enumerator(self, context: EnumeratorContext,
                          state: dict[str, Any] | None) -> SplitEnumerator:
        if state and state.get("created"):
            pending = [DatagenSplit.from_dict(d) for d in state["pending"]]
            return DatagenEnumerator(context, pending, True, self.bounded)
        k = self._splits_per_table(context.parallelism)
        start, step = self._start_ms(), self.config.event_time_step * 1000.0
        rows = self.config.rows
        splits = []
        for table in self.tables:
            for i in range(k):
                total = -1 if rows is None else rows // k + (1 if i < rows % k else 0)
                splits.append(DatagenSplit(f"{table}#{i}", table, i, k, total=total,
                                           start_ms=start, step_ms=step))
        return DatagenEnumerator(context, splits, True, self.bounded)

    def create_reader(self, context: ReaderContext) -> SourceReader:
        from sources.datagen.reader import DatagenReader

        generators = {t: RowGenerator(schema, specs, self.config.seed)
                      for t, (schema, specs) in self.tables.items()}
        total = len(self.tables) * self._splits_per_table(context.parallelism)
        return DatagenReader(context, self.config, generators, total)
