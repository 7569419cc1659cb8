"""The enumerator's checkpointed state, typed, and its versioned serializer.

:class:`MySqlPendingSplitsState` is what :meth:`MySqlEnumerator.snapshot_state` returns as
plain data (:func:`state_to_dict`) and what a restored enumerator starts from
(:func:`state_from_dict`).  Its values are immutable (tables, splits, chunk info, offsets), so
the plain data is built from them at the checkpoint and nothing is copied to keep it intact.
Versions: as :data:`sources.mysql.split.VERSION` (0: no ``version`` field, ``finished`` values
and a fold's ``chunks`` as ``[table, start, end, high]`` lists).
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from runtime.errors import TerminalError
from sources.mysql.catalog import MySqlTable
from sources.mysql.offset import BinlogOffset
from sources.mysql.split import (VERSION, BinlogSplit, ReflectedChunk, SnapshotSplit,
                                 chunk_from_dict, chunk_to_dict, decode_key, encode_key,
                                 frozen_map, offset_or_none, split_from_dict, split_to_dict,
                                 tables_from_dict, tables_to_dict)


@dataclass(frozen=True)
class SplitterPosition:
    """Where a table's next chunk starts (``next``; None: at the table's first key) and its
    index."""

    next: tuple | None = None
    index: int = 0


@dataclass(frozen=True)
class Fold:
    """Newly added tables, snapshotted: their descriptions (``gone``: dropped meanwhile), what
    their chunks reflect, and the lowest HIGH of those (``low``).  Sent to the binlog owner,
    which folds them into its split."""

    tables: Mapping[str, MySqlTable]
    gone: tuple[str, ...]
    chunks: tuple[ReflectedChunk, ...]
    low: BinlogOffset

    def __post_init__(self) -> None:
        object.__setattr__(self, "tables", frozen_map(self.tables))


@dataclass
class MySqlPendingSplitsState:
    """The captured tables, the snapshot's ``start`` offset, per table the splitter's next
    start, chunks handed out (``assigned``) and read (``finished``, what they reflect) while
    a snapshot runs; the binlog split made but not handed out; newly added tables and their
    fold.  Once the binlog split is out: the tables and a flag, O(tables)."""

    tables: dict[str, MySqlTable] = field(default_factory=dict)
    splitting: dict[str, SplitterPosition] = field(default_factory=dict)
    pending: list[SnapshotSplit] = field(default_factory=list)
    assigned: list[str] = field(default_factory=list)
    finished: dict[str, ReflectedChunk] = field(default_factory=dict)
    binlog: BinlogSplit | None = None
    binlog_assigned: bool = False
    done: bool = False
    start: BinlogOffset | None = None
    adding: dict[str, MySqlTable | None] = field(default_factory=dict)
    fold: Fold | None = None


def fold_to_dict(f: Fold) -> dict[str, Any]:
    return {"tables": tables_to_dict(f.tables), "gone": list(f.gone),
            "chunks": [chunk_to_dict(c) for c in f.chunks], "low": f.low.to_dict()}


def fold_from_dict(d: dict[str, Any]) -> Fold:
    return Fold(tables_from_dict(d["tables"]), tuple(d["gone"]),
                tuple(chunk_from_dict(c) for c in d["chunks"]), BinlogOffset.from_dict(d["low"]))


def state_to_dict(s: MySqlPendingSplitsState) -> dict[str, Any]:
    """Plain, JSON-compatible data, with the serializer's version: fresh containers, so later
    changes of the enumerator's own structures don't reach it."""
    return {
        "version": VERSION, "tables": tables_to_dict(s.tables),
        "splitting": {t: {"next": encode_key(p.next), "index": p.index}
                      for t, p in s.splitting.items()},
        "pending": [split_to_dict(p) for p in s.pending], "assigned": list(s.assigned),
        "finished": {k: chunk_to_dict(c) for k, c in s.finished.items()},
        "binlog": None if s.binlog is None else split_to_dict(s.binlog),
        "binlog_assigned": s.binlog_assigned, "done": s.done,
        "start": None if s.start is None else s.start.to_dict(),
        "adding": tables_to_dict(s.adding),
        "fold": None if s.fold is None else fold_to_dict(s.fold)}


def state_from_dict(d: dict[str, Any]) -> MySqlPendingSplitsState:
    """The state of :func:`state_to_dict`'s data, of any version up to the current one."""
    version = d.get("version", 0)
    if not isinstance(version, int) or version > VERSION:
        raise TerminalError(f"mysql enumerator state written by a newer version of the hub "
                            f"(format {version}; this one reads up to {VERSION})")
    binlog = d.get("binlog")
    fold = d.get("fold")
    pending = [split_from_dict(p) for p in d.get("pending", [])]
    return MySqlPendingSplitsState(
        tables=tables_from_dict(d.get("tables", {})),
        splitting={t: SplitterPosition(decode_key(p["next"]), int(p["index"]))
                   for t, p in d.get("splitting", {}).items()},
        pending=[p for p in pending if isinstance(p, SnapshotSplit)],
        assigned=list(d.get("assigned", [])),
        finished={k: chunk_from_dict(c) for k, c in d.get("finished", {}).items()},
        binlog=None if binlog is None else split_from_dict(binlog),  # type: ignore[arg-type]
        binlog_assigned=bool(d.get("binlog_assigned", False)), done=bool(d.get("done", False)),
        start=offset_or_none(d.get("start")), adding=tables_from_dict(d.get("adding", {})),
        fold=None if fold is None else fold_from_dict(fold))
