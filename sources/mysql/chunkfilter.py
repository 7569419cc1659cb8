"""Which binlog changes a snapshot chunk already reflects (the binlog split skips them)."""
from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable

from sources.mysql.offset import BinlogOffset
from sources.mysql.split import ReflectedChunk, comparable


class ChunkFilter:
    """Tells whether a binlog change at a position is already in a snapshot chunk.

    ``below``: per table whose chunks cover its whole key space, the lowest HIGH of them:
    every change of the table before it is reflected, so a rows event there can be skipped
    before its rows are decoded (the binlog split starts where the snapshot started, and the
    snapshotted tables' changes between there and their chunks' HIGHs are skipped this way)."""

    def __init__(self, chunks: Iterable[ReflectedChunk]):
        self.by_table: dict[str, tuple[list, list]] = {}
        self.below: dict[str, tuple[int, int]] = {}
        self.max_high: BinlogOffset | None = None
        grouped: dict[str, list] = {}
        for c in chunks:
            off = c.high
            if off is None:
                continue  # reflects nothing
            if self.max_high is None or self.max_high.is_before(off):
                self.max_high = off
            grouped.setdefault(c.table, []).append((c.start, c.end, off.key))
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
