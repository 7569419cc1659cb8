"""The two split kinds: a snapshot chunk of one table, and the binlog stream.

Both serialise to plain data.  Chunk bounds are key tuples encoded as JSON (``encode_key``):
ints and strings as they are, other values tagged.  A chunk is ``[start, end)``; ``None``
means unbounded.
"""
from __future__ import annotations

import base64
import datetime as dt
from bisect import bisect_right
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from runtime.source import Split
from sources.mysql.catalog import MySqlTable
from sources.mysql.offset import BinlogOffset


def _enc(v: Any) -> Any:
    if v is None or isinstance(v, (bool, int, str)):
        return v
    if isinstance(v, Decimal):
        return {"dec": str(v)}
    if isinstance(v, dt.datetime):
        if v.tzinfo is not None:
            v = v.astimezone(dt.timezone.utc).replace(tzinfo=None)
        return {"datetime": v.isoformat()}
    if isinstance(v, dt.date):
        return {"date": v.isoformat()}
    if isinstance(v, dt.timedelta):
        return {"us": v // dt.timedelta(microseconds=1)}
    if isinstance(v, bytes):
        return {"b64": base64.b64encode(v).decode()}
    if isinstance(v, float):
        return {"float": repr(v)}
    raise TypeError(f"chunk key value of type {type(v).__name__} is not supported")


def _dec(v: Any) -> Any:
    if not isinstance(v, dict):
        return v
    (tag, x), = v.items()
    return {"dec": Decimal, "datetime": dt.datetime.fromisoformat, "date": dt.date.fromisoformat,
            "us": lambda u: dt.timedelta(microseconds=u), "b64": base64.b64decode,
            "float": float}[tag](x)


def encode_key(key: tuple | None) -> list | None:
    return None if key is None else [_enc(v) for v in key]


def decode_key(key: list | None) -> tuple | None:
    return None if key is None else tuple(_dec(v) for v in key)


def comparable(key: tuple) -> tuple:
    """Keys from the binlog compared with chunk bounds: instants become naive UTC, as the
    snapshot's sessions (``time_zone = '+00:00'``) return them."""
    return tuple(v.astimezone(dt.timezone.utc).replace(tzinfo=None)
                 if isinstance(v, dt.datetime) and v.tzinfo is not None else v for v in key)


@dataclass
class MySqlSplit(Split):
    """Base of both kinds; ``from_dict`` builds the right one."""

    kind: str = ""

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> MySqlSplit:
        d = dict(d)
        kind = d.pop("kind")
        return (SnapshotSplit if kind == "snapshot" else BinlogSplit)(**d)


@dataclass
class SnapshotSplit(MySqlSplit):
    """Chunk ``index`` of a table.  Once read, ``high`` is the binlog offset the chunk
    reflects and ``finished`` is set; ``next_start`` is set when an open-ended last chunk was
    cut short (the rest becomes a new chunk)."""

    kind: str = "snapshot"
    table: dict = field(default_factory=dict)   # MySqlTable.to_dict()
    index: int = 0
    start: list | None = None
    end: list | None = None
    finished: bool = False
    high: dict | None = None
    next_start: list | None = None
    rows: int = 0
    version_shift: int = 0      # the binlog split's when the chunk was made (newly added tables)

    @property
    def mysql_table(self) -> MySqlTable:
        return MySqlTable.from_dict(self.table)

    @property
    def table_id(self) -> str:
        return self.table["schema"]["table"]


@dataclass
class BinlogSplit(MySqlSplit):
    """The binlog from ``offset`` on.

    * ``tables``: the schema history (table id -> MySqlTable dict) at ``offset``;
    * ``chunks`` (``[table, start, end, high]``): changes a snapshot chunk already reflects are
      skipped, until ``offset`` passes the highest of them;
    * ``ddl``: DDL statements read but not yet resolved to a schema (table id -> list of
      ``[kind, sql, ts_ms, position]``): the schema they lead to is taken from the next table
      map of the table (``binlog_row_metadata = FULL``);
    * ``adding``: tables newly matched by ``tables`` whose existing rows the enumerator is
      snapshotting (``snapshot-newly-added-tables``); the stream ignores them until then;
    * ``fold``: ``{"until": offset, "tables": [...]}`` while the binlog is re-read from the
      newly snapshotted tables' lowest HIGH up to ``until`` (where it was when they were folded
      in) for those tables only: the other tables are already emitted up to there;
    * ``version_shift``: added to the versions derived from binlog positions
      (:func:`~sources.mysql.offset.version_of`), so that they keep rising when the stream
      goes on at lower positions (a failover by GTID to a server whose binlog is shorter):
      sinks with external versions (Elasticsearch, HBase) would ignore every later change.
    """

    kind: str = "binlog"
    offset: dict = field(default_factory=dict)
    tables: dict = field(default_factory=dict)
    chunks: list = field(default_factory=list)
    ddl: dict = field(default_factory=dict)
    adding: list = field(default_factory=list)
    fold: dict | None = None
    version_shift: int = 0

    @property
    def binlog_offset(self) -> BinlogOffset:
        return BinlogOffset.from_dict(self.offset)


class ChunkFilter:
    """Tells whether a binlog change at a position is already in a snapshot chunk.

    ``below``: per table whose chunks cover its whole key space, the lowest HIGH of them:
    every change of the table before it is reflected, so a rows event there can be skipped
    before its rows are decoded (the binlog split starts where the snapshot started, and the
    snapshotted tables' changes between there and their chunks' HIGHs are skipped this way)."""

    def __init__(self, chunks: list):
        self.by_table: dict[str, tuple[list, list]] = {}
        self.below: dict[str, tuple[int, int]] = {}
        self.max_high: BinlogOffset | None = None
        grouped: dict[str, list] = {}
        for table, start, end, high in chunks:
            off = BinlogOffset.from_dict(high)
            if self.max_high is None or self.max_high.is_before(off):
                self.max_high = off
            grouped.setdefault(table, []).append((decode_key(start), decode_key(end), off.key))
        for table, items in grouped.items():
            items.sort(key=lambda c: (c[0] is not None, c[0] or ()))
            starts = [c[0] for c in items[1:]]
            self.by_table[table] = (starts, items)
            if (items[0][0] is None and items[-1][1] is None
                    and all(a[1] == b[0] for a, b in zip(items, items[1:]))):
                self.below[table] = min(c[2] for c in items)

    @property
    def active(self) -> bool:
        return self.max_high is not None

    def passed(self, offset: BinlogOffset) -> bool:
        return self.max_high is None or not offset.is_before(self.max_high)

    def all_reflected(self, table: str, position: tuple[int, int]) -> bool:
        """Every change of ``table`` at ``position`` is in a chunk already."""
        below = self.below.get(table)
        return below is not None and position < below

    def reflected(self, table: str, key: tuple, position: tuple[int, int]) -> bool:
        entry = self.by_table.get(table)
        if entry is None:
            return False
        starts, items = entry
        k = comparable(key)
        start, end, high = items[bisect_right(starts, k)]
        if (start is not None and k < start) or (end is not None and k >= end):
            return False
        return position < high
