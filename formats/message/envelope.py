"""The decoding loop shared by the JSON change-event formats (json, debezium-json, canal-json,
maxwell-json).

A format only says what one parsed message means (:meth:`EnvelopeDecoder.parse`): a list of
:class:`Event` (table, op, row dict, before dict, event time, the schema the message carries)
and schema changes.  This loop does the rest once per batch: it resolves each event's table
schema (carried, declared, or inferred and widened as new keys appear), emits a schema change
when a table's schema changes, groups consecutive events of one table and schema into one
batch and converts each column in one call.  A message whose values don't convert is found by
converting its events alone and is reported as bad; the others go on.
"""
from __future__ import annotations

import json
import logging
from abc import abstractmethod
from collections.abc import Sequence
from typing import Any, NamedTuple

from formats.base import Decoded, MessageDecoder
from formats.codec.text import JsonNumber
from formats.message.base import MessageFormatConfig, topic_table
from formats.message.values import infer_schema, rows_to_arrow, schema_changes
from runtime.batch import ChangeBatch
from runtime.schema import Column, SchemaChange, TableSchema

log = logging.getLogger(__name__)


class Event(NamedTuple):
    table: str
    op: str
    row: dict[str, Any]
    before: dict[str, Any] | None
    ts_ms: int
    #: The schema the message carries (None: declared or inferred).
    schema: TableSchema | None = None


class EnvelopeDecoder(MessageDecoder):
    """Decodes JSON messages through :meth:`parse`; keeps the last schema per table."""

    def __init__(self, config: MessageFormatConfig):
        self.config = config
        self.schemas: dict[str, TableSchema] = {}
        self._declared: dict[str, TableSchema | None] = {}  # per table: built once
        self._names: tuple[TableSchema | None, frozenset[str]] = (None, frozenset())

    @abstractmethod
    def parse(self, obj: Any, key: bytes | None, ts_ms: int, topic: str, value: bytes
              ) -> list[Event | SchemaChange]:
        """What one message means.  Raise ValueError, KeyError or TypeError for a message
        that is not of this format (it becomes a bad message)."""

    def default_table(self, topic: str) -> str:
        return self.config.table or topic_table(topic)

    # -- the loop -----------------------------------------------------------------------------
    def decode(self, keys: Sequence[bytes | None], values: Sequence[bytes | None],
               timestamps: Sequence[int], topic: str) -> Decoded:
        out = Decoded()
        run: list[tuple[int, Event]] = []
        run_schema: TableSchema | None = None
        loads = _loads
        for i, value in enumerate(values):
            if value is None:
                continue  # a tombstone: log compaction's business, no change event
            try:
                parsed = self.parse(loads(value), keys[i], timestamps[i], topic, value)
            except (ValueError, KeyError, TypeError, AttributeError, IndexError) as exc:
                out.bad.append((i, f"not a {self.format_name} message: "
                                   f"{type(exc).__name__}: {exc}"))
                continue
            for ev in parsed:
                if isinstance(ev, SchemaChange):
                    self._flush(run, run_schema, out)
                    run, run_schema = [], None
                    if ev.schema is not None:
                        self.schemas[ev.table] = ev.schema
                    else:
                        self.schemas.pop(ev.table, None)
                    out.elements.append(ev)
                    out.indexes.append([i])
                    continue
                schema, changes = self._resolve(ev)
                if changes or (run_schema is not None and schema is not run_schema):
                    self._flush(run, run_schema, out)
                    run = []
                    for ch in changes:
                        out.elements.append(ch)
                        out.indexes.append([i])
                run_schema = schema
                run.append((i, ev))
        self._flush(run, run_schema, out)
        out.bad.sort()
        return out

    @property
    def format_name(self) -> str:
        return getattr(self, "name", type(self).__name__)

    def _resolve(self, ev: Event) -> tuple[TableSchema, list[SchemaChange]]:
        """The schema of ``ev``'s table and the schema changes to emit before it."""
        old = self.schemas.get(ev.table)
        new = ev.schema
        if new is None:
            declared = self._declared.get(ev.table, _UNKNOWN)
            if declared is _UNKNOWN:
                declared = self._declared[ev.table] = self.config.declared_schema(ev.table)
            if declared is not None:
                new = declared
            elif old is None:
                new = infer_schema(ev.table, [ev.row], self.config.primary_key)
            elif ev.row.keys() <= self._names_of(old):  # the usual case: one set operation
                new = old
            else:
                new = _widened(old, ev.row)
        elif self.config.primary_key and new.primary_key != tuple(self.config.primary_key):
            new = TableSchema(new.table, new.columns, tuple(self.config.primary_key))
        if old is not None and (new is old or new == old):
            return old, []
        self.schemas[ev.table] = new
        return new, schema_changes(old, new, ev.ts_ms)

    def _names_of(self, schema: TableSchema) -> frozenset[str]:
        if self._names[0] is not schema:
            self._names = (schema, frozenset(schema.names))
        return self._names[1]

    def _flush(self, run: list[tuple[int, Event]], schema: TableSchema | None,
               out: Decoded) -> None:
        if not run or schema is None:
            return
        try:
            batch = _batch(schema, [ev for _, ev in run])
            good = run
        except ValueError:
            # find the bad messages: convert each event alone (only when the whole run failed)
            reasons: dict[int, str] = {}
            for i, ev in run:
                try:
                    _batch(schema, [ev])
                except ValueError as exc:
                    reasons.setdefault(i, f"{schema.table}: {exc}")
            out.bad.extend(sorted(reasons.items()))
            # a message with several events (Canal) is bad as a whole
            good = [(i, ev) for i, ev in run if i not in reasons]
            if not good:
                return
            batch = _batch(schema, [ev for _, ev in good])
        out.elements.append(batch)
        out.indexes.append([i for i, _ in good])


def _batch(schema: TableSchema, events: list[Event]) -> ChangeBatch:
    """Events of one table and schema as one batch (columns converted in one call each)."""
    rows = [ev.row for ev in events]
    rb = rows_to_arrow(schema, rows)
    before = None
    if any(ev.before is not None for ev in events):
        images = rows_to_arrow(schema, [ev.before if ev.before is not None else None
                                        for ev in events])
        cols = [c.to_pylist() for c in images.columns]
        before = [tuple(c[j] for c in cols) if ev.before is not None else None
                  for j, ev in enumerate(events)]
    ops = "".join(ev.op for ev in events)
    return ChangeBatch(schema, ops, arrow=rb, before=before, ts_ms=[ev.ts_ms for ev in events])


def _widened(old: TableSchema, row: dict[str, Any]) -> TableSchema:
    """``old`` plus the keys of ``row`` it lacks (inferred schemas only grow)."""
    missing = [k for k in row if k not in old.names]
    if not missing:
        return old
    extra = infer_schema(old.table, [{k: row[k] for k in missing}]).columns
    return TableSchema(old.table, old.columns + tuple(Column(c.name, c.type) for c in extra),
                       old.primary_key)


_UNKNOWN: Any = object()
# numbers with a fraction or an exponent keep their text: a DECIMAL written as a JSON number
# (Maxwell, Debezium's "double" mode, plain JSON) is read exactly, not through a double
_decode_json = json.JSONDecoder(parse_float=JsonNumber).decode


def _loads(value: bytes) -> Any:
    """``json.loads`` without its per-call detection of the text encoding: UTF-8, what JSON
    producers write; anything else (a byte-order mark, UTF-16) goes to ``json.loads``."""
    try:
        return _decode_json(value.decode())
    except (UnicodeDecodeError, ValueError, AttributeError):
        return json.loads(value, parse_float=JsonNumber)
