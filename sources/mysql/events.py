"""From raw binlog events to row changes: table maps, rows events, the decoders cache."""
from __future__ import annotations

from dataclasses import dataclass
from operator import itemgetter
from typing import Any, Callable

from runtime.errors import TerminalError
from sources.mysql.catalog import MySqlTable
from sources.mysql.decoder import MISSING, bitmap_columns, build_decoder, rows_body_start
from sources.mysql.tablemap import TableMap, lenenc, parse_table_map
from sources.mysql.protocol import ROW_EVENTS, UPDATE_V1, UPDATE_V2, WRITE_V2, DELETE_V2


@dataclass
class MappedTable:
    tmap: TableMap
    table: MySqlTable | None   # None: not captured
    key: Callable[[tuple], Any] | None
    #: the key columns of a row as one value (itemgetter: compares whole events in C), None
    #: for tables without a key
    key_values: Callable[[tuple], Any] | None = None


class RowsDecoder:
    """Keeps the table maps of the stream and decodes rows events of captured tables.

    ``geometry_has_charset``: the flavour's way of counting character columns in the table
    map's charset metadata (MariaDB counts GEOMETRY, MySQL does not)."""

    def __init__(self, zero_null: bool, geometry_has_charset: bool = False):
        self.zero_null = zero_null
        self.geometry_has_charset = geometry_has_charset
        self.maps: dict[int, MappedTable] = {}
        self._decoders: dict[tuple, Callable] = {}

    def reset(self) -> None:
        """Forget every table map: the next ones are looked up again (after a schema change
        of the history, whatever their bytes)."""
        self.maps.clear()
        self._decoders.clear()

    def table_map(self, body: bytes, lookup: Callable[[TableMap], MySqlTable | None]) -> MappedTable:
        """Register a TABLE_MAP; ``lookup`` gives the captured table it maps to (None: not
        captured), and is only asked when the map differs from the one known for its id."""
        old = self.maps.get(int.from_bytes(body[0:6], "little"))
        if old is not None and old.tmap.raw == body:
            return old
        tmap = parse_table_map(body, self.geometry_has_charset)
        table = lookup(tmap)
        key = key_values = None
        if table is not None:
            idx = table.schema.key_indexes
            key = (lambda r, i=idx: tuple(r[j] for j in i)) if len(idx) != 1 else \
                (lambda r, g=itemgetter(idx[0]): (g(r),))
            key_values = itemgetter(*idx) if idx else None
        m = MappedTable(tmap, table, key, key_values)
        self.maps[tmap.table_id] = m
        self._decoders = {k: v for k, v in self._decoders.items() if k[0] != tmap.table_id}
        return m

    def rows(self, etype: int, body: bytes) -> tuple[MappedTable, str, list, bool] | None:
        """(table, op, rows or (before, after) pairs, full image?) of a rows event; None
        when its table is not captured."""
        v2 = etype >= WRITE_V2 and etype <= DELETE_V2
        table_id, pos = rows_body_start(body, v2)
        m = self.maps.get(table_id)
        if m is None or m.table is None:
            return None
        count, pos = lenenc(body, pos)
        present, pos = bitmap_columns(body, pos, count)
        after = None
        if etype in (UPDATE_V1, UPDATE_V2):
            after, pos = bitmap_columns(body, pos, count)
        key = (table_id, tuple(present), tuple(after) if after is not None else None)
        fn = self._decoders.get(key)
        if fn is None:
            fn = build_decoder(m.table, m.tmap, present, after, self.zero_null)
            self._decoders[key] = fn
        full = len(present) == count and (after is None or len(after) == count)
        return m, ROW_EVENTS[etype], fn(body, pos, len(body)), full


def complete(table: MySqlTable, row: tuple, before: tuple | None) -> tuple:
    """A partial row image (binlog_row_image MINIMAL/NOBLOB) completed from the before image;
    a column known from neither is an error, never a NULL."""
    if before is not None:
        row = tuple(b if v is MISSING else v for v, b in zip(row, before))
    if any(v is MISSING for v in row):
        missing = [table.schema.names[i] for i, v in enumerate(row) if v is MISSING]
        raise TerminalError(
            f"{table.table_id}: the binlog row image lacks column(s) {missing} (binlog_row_image "
            "is MINIMAL or NOBLOB): their values are unknown. Set binlog_row_image = FULL on the "
            "server (SET GLOBAL binlog_row_image = 'FULL') and restart the pipeline with --fresh")
    return row
