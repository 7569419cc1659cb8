"""The MySQL source's splits: typed, immutable values, and their versioned serializer.

Two split kinds (Flink CDC's ``SnapshotSplit`` / ``StreamSplit``): a snapshot chunk of one
table (:class:`SnapshotSplit`) and the binlog stream (:class:`BinlogSplit`).  Both are frozen:
what changes while the binlog is read lives in :class:`BinlogSplitState`, which makes a new
split value for every checkpoint (:meth:`BinlogSplitState.to_split`); a chunk is read whole,
and its result is a new split value (:meth:`SnapshotSplit.read`).  So a split handed to a
checkpoint never changes afterwards, and nothing is copied to keep it so.

Offsets are :class:`~sources.mysql.offset.BinlogOffset`; chunk bounds are key tuples (``None``:
unbounded; a chunk is ``[start, end)``); table descriptions are
:class:`~sources.mysql.catalog.MySqlTable`.  Plain data exists only at the serializer
(:func:`split_to_dict` / :func:`split_from_dict`), which writes :data:`VERSION` into every
split and reads every version written so far (see there).  Chunk bounds are encoded as JSON by
``encode_key``: ints and strings as they are, other values tagged.
"""
from __future__ import annotations

import base64
import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from decimal import Decimal
from types import MappingProxyType
from typing import Any, ClassVar

from runtime.errors import TerminalError
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


def canonical_key(key: tuple | None) -> tuple | None:
    """A chunk key read from the server as a restore would see it (instants as naive UTC,
    floats exact, an unsupported type fails here rather than at the next checkpoint)."""
    return decode_key(encode_key(key))


def comparable(key: tuple) -> tuple:
    """Keys from the binlog compared with chunk bounds: instants become naive UTC, as the
    snapshot's sessions (``time_zone = '+00:00'``) return them."""
    return tuple(v.astimezone(dt.timezone.utc).replace(tzinfo=None)
                 if isinstance(v, dt.datetime) and v.tzinfo is not None else v for v in key)



def frozen_map(d: Mapping) -> Mapping:
    """A read-only view of a dict that its owner never changes again (copy-on-write)."""
    return d if isinstance(d, MappingProxyType) else MappingProxyType(dict(d))


@dataclass(frozen=True)
class ReflectedChunk:
    """A read snapshot chunk as the binlog split sees it: changes of ``table`` with a key in
    ``[start, end)`` before ``high`` are in the chunk already.  ``high`` is None for a chunk
    of a table that was gone when it was to be read: it reflects nothing."""

    table: str
    start: tuple | None
    end: tuple | None
    high: BinlogOffset | None


@dataclass(frozen=True)
class PendingDdl:
    """A DDL statement read from the binlog whose resulting schema is not known yet (it is
    taken from the table's next table map, ``binlog_row_metadata = FULL``)."""

    kind: str
    sql: str
    ts_ms: int
    position: BinlogOffset


@dataclass(frozen=True)
class FoldProgress:
    """The binlog is re-read from the newly added tables' lowest HIGH up to ``until`` (where
    it was when they were folded in), for ``tables`` only."""

    until: BinlogOffset
    tables: tuple[str, ...]


class MySqlSplit:
    """Base of both split kinds (plain data through :func:`split_to_dict` /
    :func:`split_from_dict`).  Not a subclass of :class:`runtime.source.Split`, a mutable
    dataclass that frozen dataclasses can't derive from; it has the same interface
    (``split_id``, ``to_dict``, ``from_dict``)."""

    split_id: str
    kind: ClassVar[str] = ""

    def to_dict(self) -> dict[str, Any]:
        return split_to_dict(self)  # type: ignore[arg-type]

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> MySqlSplit:
        return split_from_dict(d)


@dataclass(frozen=True)
class SnapshotSplit(MySqlSplit):
    """Chunk ``index`` of a table: the rows with a chunk key in ``[start, end)``.  Once read
    (:meth:`read`), ``finished`` is set and ``high`` is the binlog offset the chunk reflects;
    ``next_start`` is set when an open-ended last chunk was cut short (the rest becomes a new
    chunk, ``end`` is where it was cut).  ``version_shift``: the binlog split's when the
    chunk was made (newly added tables)."""

    split_id: str
    table: MySqlTable
    index: int = 0
    start: tuple | None = None
    end: tuple | None = None
    version_shift: int = 0
    finished: bool = False
    high: BinlogOffset | None = None
    next_start: tuple | None = None
    rows: int = 0
    kind: ClassVar[str] = "snapshot"

    @property
    def table_id(self) -> str:
        return self.table.table_id

    def read(self, high: BinlogOffset | None, rows: int, cut_at: tuple | None = None) -> SnapshotSplit:
        """This chunk, read: it reflects the binlog up to ``high`` (None: the table was gone);
        ``cut_at``: the open-ended last chunk was cut short there."""
        if cut_at is not None:
            return replace(self, finished=True, high=high, rows=rows, end=cut_at, next_start=cut_at)
        return replace(self, finished=True, high=high, rows=rows)

    def reflected(self) -> ReflectedChunk:
        return ReflectedChunk(self.table_id, self.start, self.end, self.high)


@dataclass(frozen=True)
class BinlogSplit(MySqlSplit):
    """The binlog from ``offset`` on.

    * ``tables``: the schema history (table id -> table) at ``offset``;
    * ``chunks``: changes a snapshot chunk already reflects are skipped, until ``offset``
      passes the highest of their HIGHs;
    * ``ddl``: DDL statements read but not yet resolved to a schema, per table;
    * ``adding``: tables newly matched by ``tables`` whose existing rows the enumerator is
      snapshotting (``snapshot-newly-added-tables``); the stream ignores them until then;
    * ``fold``: set while the binlog is re-read for newly snapshotted tables;
    * ``version_shift``: added to the versions derived from binlog positions
      (:func:`~sources.mysql.offset.version_of`), so that they keep rising when the stream
      goes on at lower positions (a failover by GTID to a server whose binlog is shorter):
      sinks with external versions (Elasticsearch, HBase) would ignore every later change.
    """

    split_id: str
    offset: BinlogOffset
    tables: Mapping[str, MySqlTable] = field(default_factory=dict)
    chunks: tuple[ReflectedChunk, ...] = ()
    ddl: Mapping[str, tuple[PendingDdl, ...]] = field(default_factory=dict)
    adding: tuple[str, ...] = ()
    fold: FoldProgress | None = None
    version_shift: int = 0
    kind: ClassVar[str] = "binlog"

    def __post_init__(self) -> None:
        # read-only views: a split value is shared by the reader and a checkpoint
        object.__setattr__(self, "tables", frozen_map(self.tables))
        object.__setattr__(self, "ddl", frozen_map(self.ddl))
        object.__setattr__(self, "chunks", tuple(self.chunks))
        object.__setattr__(self, "adding", tuple(self.adding))


class BinlogSplitState:
    """The reader's progress on its binlog split (Flink CDC's ``StreamSplitState``): changed
    as units are emitted; :meth:`to_split` gives the split value a checkpoint keeps.  The
    table history is copy-on-write: a dict handed to a split is never changed again."""

    def __init__(self, split: BinlogSplit):
        self.split_id = split.split_id
        self.offset = split.offset
        self._tables: Mapping[str, MySqlTable] = split.tables
        self.chunks = split.chunks
        self.ddl = split.ddl
        self.adding = split.adding
        self.fold = split.fold
        self.version_shift = split.version_shift

    @property
    def tables(self) -> Mapping[str, MySqlTable]:
        return self._tables

    def update_tables(self, changes: Mapping[str, MySqlTable | None]) -> None:
        """Apply schema history changes (None: the table is gone)."""
        if not changes:
            return
        tables = dict(self._tables)
        for t, v in changes.items():
            if v is None:
                tables.pop(t, None)
            else:
                tables[t] = v
        self._tables = MappingProxyType(tables)

    def to_split(self) -> BinlogSplit:
        return BinlogSplit(self.split_id, self.offset, self._tables, self.chunks, self.ddl,
                           self.adding, self.fold, self.version_shift)


# -- the serializer -------------------------------------------------------------------------------
#: The version :func:`split_to_dict` writes.  Versions read by :func:`split_from_dict`:
#:
#: * 0 (no ``version`` field; what the source wrote before there was one): as 1, but a binlog
#:   split's ``chunks`` are ``[table, start, end, high]`` lists and its ``ddl`` entries
#:   ``[kind, sql, ts_ms, position]`` lists;
#: * 1: named fields throughout.
#:
#: A change of the shape takes the next number and keeps reading the ones before.
VERSION = 1


def offset_or_none(d: dict | None) -> BinlogOffset | None:
    return None if d is None else BinlogOffset.from_dict(d)


def _offset_dict(o: BinlogOffset | None) -> dict | None:
    return None if o is None else o.to_dict()


def chunk_to_dict(c: ReflectedChunk) -> dict[str, Any]:
    return {"table": c.table, "start": encode_key(c.start), "end": encode_key(c.end),
            "high": _offset_dict(c.high)}


def chunk_from_dict(d: Any) -> ReflectedChunk:
    if isinstance(d, list):          # version 0
        table, start, end, high = d
    else:
        table, start, end, high = d["table"], d["start"], d["end"], d["high"]
    return ReflectedChunk(table, decode_key(start), decode_key(end), offset_or_none(high))


def _ddl_to_dict(e: PendingDdl) -> dict[str, Any]:
    return {"kind": e.kind, "sql": e.sql, "ts_ms": e.ts_ms, "position": e.position.to_dict()}


def _ddl_from_dict(d: Any) -> PendingDdl:
    if isinstance(d, list):          # version 0
        kind, sql, ts_ms, position = d
    else:
        kind, sql, ts_ms, position = d["kind"], d["sql"], d["ts_ms"], d["position"]
    return PendingDdl(kind, sql, int(ts_ms), BinlogOffset.from_dict(position))


def tables_to_dict(tables: Mapping[str, MySqlTable | None]) -> dict[str, Any]:
    return {t: (v.to_dict() if v is not None else None) for t, v in tables.items()}


def tables_from_dict(d: dict[str, Any]) -> dict[str, Any]:
    return {t: (MySqlTable.from_dict(v) if v is not None else None) for t, v in d.items()}


def split_to_dict(split: SnapshotSplit | BinlogSplit) -> dict[str, Any]:
    """Plain, JSON-compatible data of a split, with :data:`VERSION`."""
    if isinstance(split, SnapshotSplit):
        return {"version": VERSION, "kind": "snapshot", "split_id": split.split_id,
                "table": split.table.to_dict(), "index": split.index,
                "start": encode_key(split.start), "end": encode_key(split.end),
                "version_shift": split.version_shift, "finished": split.finished,
                "high": _offset_dict(split.high), "next_start": encode_key(split.next_start),
                "rows": split.rows}
    return {"version": VERSION, "kind": "binlog", "split_id": split.split_id,
            "offset": split.offset.to_dict(), "tables": tables_to_dict(split.tables),
            "chunks": [chunk_to_dict(c) for c in split.chunks],
            "ddl": {t: [_ddl_to_dict(e) for e in es] for t, es in split.ddl.items()},
            "adding": list(split.adding),
            "fold": None if split.fold is None else {"until": split.fold.until.to_dict(),
                                                     "tables": list(split.fold.tables)},
            "version_shift": split.version_shift}


def split_from_dict(d: dict[str, Any]) -> SnapshotSplit | BinlogSplit:
    """The split of :func:`split_to_dict`'s data, of any version up to :data:`VERSION`."""
    version = d.get("version", 0)
    if not isinstance(version, int) or version > VERSION:
        raise TerminalError(f"mysql split {d.get('split_id')!r}: written by a newer version of "
                            f"the hub (split format {version}; this one reads up to {VERSION})")
    if d["kind"] == "snapshot":
        return SnapshotSplit(d["split_id"], MySqlTable.from_dict(d["table"]), int(d.get("index", 0)),
                             decode_key(d.get("start")), decode_key(d.get("end")),
                             int(d.get("version_shift", 0)), bool(d.get("finished", False)),
                             offset_or_none(d.get("high")), decode_key(d.get("next_start")),
                             int(d.get("rows", 0)))
    fold = d.get("fold")
    return BinlogSplit(
        d["split_id"], BinlogOffset.from_dict(d["offset"]),
        {t: MySqlTable.from_dict(v) for t, v in d.get("tables", {}).items()},
        tuple(chunk_from_dict(c) for c in d.get("chunks", ())),
        {t: tuple(_ddl_from_dict(e) for e in es) for t, es in d.get("ddl", {}).items()},
        tuple(d.get("adding", ())),
        None if fold is None else FoldProgress(BinlogOffset.from_dict(fold["until"]),
                                               tuple(fold["tables"])),
        int(d.get("version_shift", 0)))
