"""The print sink factory (``type = "print"``) and its writer."""
from __future__ import annotations

import base64
import datetime as dt
import json
import logging
import sys
from decimal import Decimal
from typing import Any, ClassVar

from runtime.batch import CREATE, DELETE, READ, UPDATE, ChangeBatch
from runtime.schema import SchemaChange
from runtime.sink import Committable, Committer, Sink, SinkWriter, WriterContext
from sinks.noop import NoOpCommitter
from sinks.print.config import PrintSinkConfig

log = logging.getLogger(__name__)

#: Flink RowKind short strings of the row image each op prints.
_KIND = {READ: "+I", CREATE: "+I", UPDATE: "+U", DELETE: "-D"}


def format_value(v: Any) -> str:
    """A value as Flink prints it (``null``, ``true``, ISO times, unquoted strings)."""
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (dt.date, dt.time)):  # datetime is a date
        return v.isoformat()
    if isinstance(v, dt.timedelta):
        return str(v)
    if isinstance(v, Decimal):
        return format(v, "f")
    if isinstance(v, (bytes, bytearray)):
        return "base64:" + base64.b64encode(v).decode("ascii")
    if isinstance(v, list):
        return "[" + ", ".join(format_value(x) for x in v) + "]"
    return str(v)


def format_row(kind: str, row: tuple[Any, ...]) -> str:
    return kind + "[" + ", ".join(map(format_value, row)) + "]"


def line_prefix(identifier: str, subtask: int, parallelism: int) -> str:
    """Flink's prefix: ``id:n> `` with n = subtask + 1 when parallel, ``id> ``, or nothing."""
    prefix = identifier
    if parallelism > 1:
        prefix += (":" if prefix else "") + str(subtask + 1)
    return prefix + "> " if prefix else ""


class PrintSinkWriter(SinkWriter):
    """Prints each event of each batch at :meth:`write`, one line per row image:
    ``[prefix]db.table +I[v1, v2]``; an update with a before image prints ``-U[...]`` then
    ``+U[...]``.  Schema changes print as ``[prefix]db.table KIND {details}``.  Stops
    printing (and says so once in the log) after ``limit`` lines."""

    def __init__(self, config: PrintSinkConfig, context: WriterContext):
        self._prefix = line_prefix(config.print_identifier, context.subtask, context.parallelism)
        self._stderr = config.standard_error
        self._remaining = config.limit
        self.lines = 0

    def write(self, batch: ChangeBatch) -> None:
        head = f"{self._prefix}{batch.table} "
        before = batch.before
        lines: list[str] = []
        for i, (op, row) in enumerate(zip(batch.ops, batch.rows(), strict=True)):
            b = before[i] if before is not None and op == UPDATE else None
            if b is not None:
                lines.append(head + format_row("-U", b))
            lines.append(head + format_row(_KIND[op], row))
        self._emit(lines)

    def write_schema_change(self, change: SchemaChange) -> None:
        details = json.dumps(change.details, default=str)
        self._emit([f"{self._prefix}{change.table} {change.kind.upper()} {details}"])

    def prepare_commit(self, checkpoint_id: int) -> list[Committable]:
        return []

    def _emit(self, lines: list[str]) -> None:
        if self._remaining is not None:
            if self._remaining <= 0:
                return
            if len(lines) >= self._remaining:
                lines = lines[:self._remaining]
                log.info("print sink: limit reached, further events are not printed")
            self._remaining -= len(lines)
        if not lines:
            return
        # looked up per call so that redirection (and pytest's capture) applies
        stream = sys.stderr if self._stderr else sys.stdout
        stream.write("\n".join(lines) + "\n")
        stream.flush()
        self.lines += len(lines)


class PrintSink(Sink):
    """Prints change events (see :class:`PrintSinkWriter`); no transactions, no state."""

    config_class: ClassVar[type[PrintSinkConfig]] = PrintSinkConfig

    def __init__(self, config: PrintSinkConfig):
        self.config = config

    def create_writer(self, context: WriterContext, state: dict[str, Any] | None) -> SinkWriter:
        return PrintSinkWriter(self.config, context)

    def create_committer(self) -> Committer:
        return NoOpCommitter()
