"""Event-time partitions: which rows of a changelog table go to which partition directory.

A partition is named by formatting the *floor* of the event time to the pattern's finest unit
with the pattern (``dt=%Y-%m-%d/hr=%H`` cuts hours).  The work over rows is vectorised with
Arrow (convert to wall clock, floor, find distinct floors, sort rows by floor); Python only
touches the few distinct floors of a batch.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from runtime.batch import TS_COLUMN
from runtime.errors import TerminalError

#: Directory of rows whose event time is null; never complete, so it never gets ``_SUCCESS``.
DEFAULT_PARTITION = "__DEFAULT_PARTITION__"

#: Units from fine to coarse, as Arrow's ``floor_temporal`` names them.
_UNITS = ("second", "minute", "hour", "day", "week", "month", "year")

#: strftime directive -> the unit it distinguishes (None: constant text, distinguishes nothing).
_DIRECTIVE_UNIT: dict[str, str | None] = {
    **dict.fromkeys("STXcrs", "second"), **dict.fromkeys("MR", "minute"),
    **dict.fromkeys("HIkl", "hour"), **dict.fromkeys("dejaAwuDFx", "day"),
    **dict.fromkeys("UWV", "week"), **dict.fromkeys("mbBh", "month"),
    **dict.fromkeys("YyCGg", "year"), **dict.fromkeys("%pnt", None),
}
_DIRECTIVE = re.compile(r"%(.)")


def granularity_of(pattern: str) -> str:
    """The finest unit among the directives of a strftime ``pattern``.

    Raises ValueError for an unknown directive or a pattern without any time directive.
    """
    units: set[str] = set()
    for d in _DIRECTIVE.findall(pattern):
        if d not in _DIRECTIVE_UNIT:
            raise ValueError(f"partition-format: unsupported strftime directive %{d} "
                             f"in {pattern!r}")
        unit = _DIRECTIVE_UNIT[d]
        if unit is not None:
            units.add(unit)
    if not units:
        raise ValueError(f"partition-format {pattern!r} has no time directive (like %Y or %H)")
    return min(units, key=_UNITS.index)


def _next(floor: datetime, unit: str) -> datetime:
    """The start of the unit after the one starting at ``floor`` (wall clock)."""
    if unit == "month":
        return floor.replace(year=floor.year + floor.month // 12, month=floor.month % 12 + 1)
    if unit == "year":
        return floor.replace(year=floor.year + 1)
    step = {"second": timedelta(seconds=1), "minute": timedelta(minutes=1),
            "hour": timedelta(hours=1), "day": timedelta(days=1), "week": timedelta(days=7)}
    return floor + step[unit]


@dataclass(frozen=True, slots=True)
class Partition:
    """A partition directory (relative to the table's directory; ``""`` when unpartitioned)
    and the epoch milliseconds at which it ends (exclusive; ``None``: it never completes)."""

    dir: str
    end_ms: int | None


UNPARTITIONED = Partition("", None)


class Partitioner:
    """Splits changelog tables by event-time partition.

    ``column`` (default ``ts_ms``) may be an integer epoch-milliseconds column, a
    TIMESTAMP_LTZ (an instant, shown in ``zone``), a TIMESTAMP (a wall clock, read as being in
    ``zone``) or a DATE.  Thread-confined: one per writer.
    """

    def __init__(self, pattern: str | None, column: str | None = None, zone: str = "UTC"):
        self.pattern = pattern
        self.column = column or TS_COLUMN
        self.zone_name = zone
        self._zone = ZoneInfo(zone)
        self.unit = granularity_of(pattern) if pattern else ""
        # %U weeks start on Sunday, %W and %V weeks on Monday.
        self._monday = not (pattern and "%U" in pattern)
        self._described: dict[datetime | None, Partition] = {}

    def split(self, table: pa.Table, table_id: str = "") -> list[tuple[Partition, pa.Table]]:
        """``table``'s rows grouped by partition (each group keeps the rows' order)."""
        if self.pattern is None:
            return [(UNPARTITIONED, table)]
        groups = self.groups(table, table_id)
        if len(groups) == 1:
            return [(groups[0][0], table)]
        order = np.concatenate([idx for _, idx in groups])
        grouped = table.take(pa.array(order))
        out, at = [], 0
        for p, idx in groups:
            out.append((p, grouped.slice(at, len(idx))))
            at += len(idx)
        return out

    def groups(self, table: pa.Table, table_id: str = "") -> list[tuple[Partition, np.ndarray]]:
        """The row indexes of ``table`` per partition, each ascending (one group: all rows).
        ``table`` needs only the partition time column."""
        n = table.num_rows
        if self.pattern is None:
            return [(UNPARTITIONED, np.arange(n))]
        if self.column not in table.column_names:
            raise TerminalError(f"files sink: table {table_id} has no column {self.column!r} "
                                f"(partition-time-column)")
        floors = pc.floor_temporal(self._wall_clock(table.column(self.column), table_id),
                                   unit=self.unit, week_starts_monday=self._monday)
        distinct = pc.unique(floors)
        partitions = [self._describe(v) for v in distinct.cast(pa.timestamp("us")).to_pylist()]
        if len(partitions) == 1:
            return [(partitions[0], np.arange(n))]
        codes = pc.index_in(floors, value_set=distinct).combine_chunks().to_numpy()
        order = np.argsort(codes, kind="stable")
        bounds = np.concatenate(([0], np.cumsum(np.bincount(codes, minlength=len(partitions)))))
        return [(p, order[int(bounds[i]):int(bounds[i + 1])]) for i, p in enumerate(partitions)]

    def _wall_clock(self, col: pa.ChunkedArray, table_id: str) -> pa.ChunkedArray:
        """Event times as naive timestamps holding the wall clock of ``zone``."""
        t = col.type
        if pa.types.is_timestamp(t) and t.tz is None:
            return col
        if pa.types.is_date(t):
            return col.cast(pa.timestamp("ms"))
        if pa.types.is_integer(t):
            col = col.cast(pa.int64()).cast(pa.timestamp("ms", tz="UTC"))
        elif not pa.types.is_timestamp(t):
            raise TerminalError(f"files sink: column {self.column!r} of table {table_id} has type "
                                f"{t}; partition-time-column must be a TIMESTAMP, TIMESTAMP_LTZ, "
                                f"DATE or integer epoch-milliseconds column")
        unit = col.type.unit
        if self.zone_name == "UTC":
            return col.cast(pa.timestamp(unit))  # dropping the zone keeps the UTC wall clock
        return pc.local_timestamp(col.cast(pa.timestamp(unit, tz=self.zone_name)))

    def _describe(self, floor: datetime | None) -> Partition:
        known = self._described.get(floor)
        if known is not None:
            return known
        if floor is None:
            part = Partition(DEFAULT_PARTITION, None)
        else:
            assert self.pattern is not None
            end = _next(floor, self.unit).replace(tzinfo=self._zone)
            part = Partition(floor.strftime(self.pattern), round(end.timestamp() * 1000))
        if len(self._described) > 4096:  # bounded: a long backfill touches many partitions
            self._described.clear()
        self._described[floor] = part
        return part
