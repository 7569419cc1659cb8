"""Reading one snapshot chunk, consistent with one binlog position, as Arrow.

The chunk's SELECT goes over the text protocol, but rows are not parsed one by one: the result
packets are read in bulk from the socket, the row packets are found without a Python step per
row (:func:`_walk`), and each column is cut out of all rows at once with numpy
(length-prefixed values), then converted by Arrow casts (:mod:`sources.mysql.types`).

Consistency (the watermark algorithm of DESIGN.md): MariaDB and Percona Server pin the binlog
position of a consistent snapshot (LOW = HIGH, nothing to replay).  On MySQL, LOW is taken
before the SELECT and HIGH after it, and the binlog between them is replayed for the chunk's key
range into the result.  Flink CDC does the same and has a window there: MySQL writes a
transaction to the binlog before it commits it in InnoDB, so a transaction before LOW may still
be invisible to the SELECT; a replay from LOW misses it, and the binlog split skips it as
already reflected (it lies below the chunk's HIGH): a lost change.  LOW is therefore fenced
(:meth:`~sources.mysql.dialect.Dialect.low_watermark`): the SELECT starts only once everything
in flight when LOW was read is committed.  Then every transaction the SELECT does not see is at
or after LOW: below HIGH it is replayed (the last image per key in binlog order is the state at
HIGH whatever the SELECT saw: replaying a change it already saw is harmless), from HIGH on the
binlog split emits it.  Every transaction the SELECT sees was in the binlog before the SELECT
started, so below HIGH, where the binlog split rightly skips it for the chunk's keys.
"""
from __future__ import annotations

import select
import threading
import time
from typing import Any

import numpy as np
import pyarrow as pa
import pymysql

from runtime.errors import TerminalError, TransientError
from runtime.schema import split_table_id
from runtime.schema import table_id as make_table_id
from sources.mysql.catalog import MySqlTable
from sources.mysql.dialect import Dialect
from sources.mysql.events import RowsDecoder, complete
from sources.mysql.offset import BinlogOffset
from sources.mysql.protocol import ROW_EVENTS, ROTATE, TABLE_MAP, BinlogClient
from sources.mysql.split import comparable
from sources.mysql.types import quote, text_column_to_arrow

COM_QUERY = 0x03
_NO_SUCH_TABLE = 1146
_BAD_FIELD = 1054


class TableGone(TerminalError):
    """The table was dropped or renamed after it was listed (the snapshot skips the rest of
    it; the binlog carries its changes and the DDL)."""


def _raise_known(exc: pymysql.err.MySQLError, table: MySqlTable) -> None:
    """The snapshot's errors that DDL on the table causes, as the errors a user can act on."""
    code = exc.args[0] if exc.args else None
    if code == _NO_SUCH_TABLE:
        raise TableGone(f"{table.table_id} no longer exists: {exc.args[-1]}") from exc
    if code == _BAD_FIELD:
        # a column dropped or renamed after the table was listed: its chunks select the columns
        # it had then, and rows read with another column list can't be made consistent with
        # the binlog's schema history (Flink CDC has the same limit: no DDL during a snapshot)
        raise TerminalError(
            f"{table.table_id}: a column was dropped or renamed while the table was being "
            f"snapshotted ({exc.args[-1]}); the snapshot can't follow DDL on a table it is "
            "reading: run again with --fresh to snapshot it with its new columns (DDL after a "
            "table's snapshot is followed as schema changes)") from exc


def _where(conn: Any, key: tuple[str, ...], start: tuple | None, end: tuple | None) -> str:
    cols = ", ".join(quote(k) for k in key)
    lhs = f"({cols})" if len(key) > 1 else cols

    def lit(values: tuple) -> str:
        text = ", ".join(conn.escape(v) for v in values)
        return f"({text})" if len(values) > 1 else text

    parts = []
    if start is not None:
        parts.append(f"{lhs} >= {lit(start)}")
    if end is not None:
        parts.append(f"{lhs} < {lit(end)}")
    return (" WHERE " + " AND ".join(parts)) if parts else ""


def chunk_sql(conn: Any, table: MySqlTable, start: tuple | None, end: tuple | None,
              limit: int | None) -> str:
    db, name = split_table_id(table.table_id)
    cols = ", ".join(n.select_expr() for n in table.natives)
    order = ", ".join(quote(k) for k in table.chunk_key)
    sql = f"SELECT {cols} FROM {quote(db)}.{quote(name)}{_where(conn, table.chunk_key, start, end)} ORDER BY {order}"
    return sql + (f" LIMIT {limit}" if limit is not None else "")


def next_chunk_start(conn: Any, table: MySqlTable, start: tuple | None, size: int) -> tuple | None:
    """The first key of the chunk after the one starting at ``start``; None when that chunk
    is the last one.  One index range scan of ``size`` entries."""
    db, name = split_table_id(table.table_id)
    cols = ", ".join(quote(k) for k in table.chunk_key)
    sql = (f"SELECT {cols} FROM {quote(db)}.{quote(name)}{_where(conn, table.chunk_key, start, None)} "
           f"ORDER BY {cols} LIMIT 1 OFFSET {size}")
    with conn.cursor() as cur:
        try:
            cur.execute(sql)
        except pymysql.err.MySQLError as exc:
            _raise_known(exc, table)
            raise
        row = cur.fetchone()
    return tuple(row) if row else None


_INTEGERS = frozenset({"TINYINT", "SMALLINT", "INT", "BIGINT"})


def key_span(conn: Any, table: MySqlTable) -> tuple[int, int] | None:
    """``(min, max)`` of the table's key when chunks can be cut by arithmetic instead of
    :func:`next_chunk_start`'s index scan (Flink CDC's evenly distributed chunks): the chunk
    key is the whole primary key, one integer column (unique: a chunk ``[a, a + size)`` holds
    at most ``size`` rows, whatever the data), and the keys fill at least half of that range by
    the server's row estimate (sparse keys would make many empty chunks).  None otherwise, or
    for an empty table."""
    key = table.chunk_key
    if len(key) != 1 or tuple(table.schema.primary_key) != key \
            or table.schema.column(key[0]).type.kind not in _INTEGERS:
        return None
    db, name = split_table_id(table.table_id)
    col = quote(key[0])
    with conn.cursor() as cur:
        try:
            cur.execute(f"SELECT MIN({col}), MAX({col}) FROM {quote(db)}.{quote(name)}")
            lo, hi = cur.fetchone()
            cur.execute("SELECT table_rows FROM information_schema.tables "
                        "WHERE table_schema = %s AND table_name = %s", (db, name))
            row = cur.fetchone()
        except pymysql.err.MySQLError as exc:
            _raise_known(exc, table)
            raise
    if lo is None or row is None or row[0] is None:
        return None
    lo, hi = int(lo), int(hi)
    return (lo, hi) if hi - lo + 1 <= 2 * int(row[0]) else None


def even_chunk_start(span: tuple[int, int], start: tuple | None, size: int) -> tuple | None:
    """The first key of the chunk after the one starting at ``start`` (None: the first),
    ``size`` keys on, for a table of :func:`key_span` ``span``; None when that chunk is the last
    one (it reaches past the largest key: open-ended, rows inserted meanwhile included)."""
    nxt = (span[0] if start is None else int(start[0])) + size
    return None if nxt > span[1] else (nxt,)


_READ = 1 << 20        # bytes asked of the socket at once
_local = threading.local()   # a receive buffer per reading thread
_KEEP = 64 << 20       # ... kept up to this size
_EAGER = 128 << 10     # bytes not walked yet that are walked while waiting for more
_STALL_MS = 20         # no more bytes for this long: walk what came (an error packet ends it)


def _looks_done(buf: bytearray, have: int) -> bool:
    """Whether the bytes read end like a result set does: an EOF packet (``fe``, 2 bytes of
    warnings, 2 of status: 5 bytes of payload).  Only a hint for when to walk: the walk
    (:func:`_walk`) decides."""
    return have >= 9 and buf[have - 9] == 5 and buf[have - 8] == 0 and buf[have - 7] == 0 \
        and buf[have - 5] == 0xFE


def _raw_rows(conn: Any, sql: str) -> tuple[bytearray, np.ndarray, int]:
    """Run ``sql`` and read its result rows as raw packets: (buffer, payload start of each
    row, columns).

    The socket is read in large pieces into one buffer; the packets are walked (:func:`_walk`,
    vectorised) once the bytes look complete (:func:`_looks_done`) or the server pauses."""
    conn._execute_command(COM_QUERY, sql)
    first = conn._read_packet()
    ncols = first.read_length_encoded_integer()
    for _ in range(ncols):
        conn._read_packet()
    conn._read_packet()  # EOF after the column definitions
    sock = conn._sock
    # the thread's receive buffer, kept from chunk to chunk (fresh memory for every chunk
    # cost more than the copy of the rows out of it at the end)
    buf = getattr(_local, "buf", None)
    if buf is None:
        buf = _local.buf = bytearray(4 * _READ)
    # what PyMySQL's reader has buffered past the column definitions (or one socket read):
    # from then on its buffer is empty and the socket is read directly
    first = conn._rfile.read1(_READ)
    have, pos = len(first), 0
    buf[:have] = first
    starts: list[np.ndarray] = []
    poll = select.poll()   # not select.select: it fails on descriptors past 1023
    poll.register(sock, select.POLLIN)
    while True:
        # walk when the bytes look complete, and while the server has sent nothing more (at
        # the end only the last piece is left to walk: the connection idles meanwhile)
        if have and (_looks_done(buf, have) or not poll.poll(0) and (
                have - pos >= _EAGER or not poll.poll(_STALL_MS))):
            pos, done = _walk(np.frombuffer(buf, dtype=np.uint8, count=have), pos, starts)
            if done:
                rows = bytearray(memoryview(buf)[:pos])   # without the EOF packet
                if len(buf) > _KEEP:
                    _local.buf = None   # a chunk of wide rows: its buffer is not kept
                return rows, (np.concatenate(starts) if starts else np.empty(0, np.int64)), ncols
        if len(buf) - have < _READ:
            buf.extend(bytes(len(buf)))   # doubling: amortised, and kept for the next chunks
        with memoryview(buf) as view:
            got = sock.recv_into(view[have:])
        if not got:
            raise TransientError("connection lost while reading a snapshot chunk")
        have += got


def _walk(b: np.ndarray, pos: int, out: list[np.ndarray]) -> tuple[int, bool]:
    """Walk the complete packets of ``b`` from ``pos`` (a packet's start): appends the
    payload starts of the row packets to ``out``; returns (the position of the first packet
    not walked, whether the result set ended there: its EOF packet).

    A packet is 3 bytes of length, a sequence byte and the payload, so each row's position
    follows from the one before: a chain, which is walked without a Python step per row.
    Every position whose third byte is 0 (a packet shorter than 64 KiB starts there, or not)
    is a candidate; its successor is the candidate where its packet would end.  The rows are
    the candidates reached from ``pos``, found by pointer doubling (log2(rows) numpy
    gathers).  A row of 64 KiB or more, an incomplete packet, or an EOF/ERR packet ends the
    chain; those are stepped one by one."""
    have = len(b)
    while True:
        if pos + 4 > have:
            return pos, False
        n = int(b[pos]) | int(b[pos + 1]) << 8 | int(b[pos + 2]) << 16
        if pos + 4 + n > have:
            return pos, False
        lead = int(b[pos + 4]) if n else 0
        if lead >= 0xFE or n == 0xFFFFFF:
            # a row's first byte is a length prefix, never 0xFF, and 0xFE only for an
            # 8-byte length (a packet of 9 bytes or more)
            if lead == 0xFE and n < 9:
                return pos, True
            if lead == 0xFF:
                code = int(b[pos + 5]) | int(b[pos + 6]) << 8
                msg = b[pos + 7:pos + 4 + n].tobytes().decode(errors="replace")
                raise TerminalError(f"snapshot query failed ({code}): {msg}")
            if n == 0xFFFFFF:
                raise TerminalError("a snapshot row is larger than 16 MB, which the snapshot "
                                    "reader does not support")
        if lead >= 0xFE or n >= 1 << 16:
            out.append(np.array([pos + 4], dtype=np.int64))
            pos += 4 + n
            continue
        seg = b[pos:]
        cand = np.flatnonzero(seg[2:len(seg) - 1] == 0)   # i + 4 <= len(seg); cand[0] == 0
        m = len(cand)
        lens = seg[cand].astype(np.int64) | seg[cand + 1].astype(np.int64) << 8
        target = cand + 4 + lens
        succ = np.full(m, m, dtype=np.int64)                 # m: not a candidate, chain ends
        # a row's successor is usually 1 or 2 candidates on (a short row's header has two
        # zero bytes); the others (mostly candidates that are no row) are searched
        for d in (1, 2):
            hit = np.flatnonzero(cand[d:] == target[:-d])
            succ[hit] = hit + d
        rest = np.flatnonzero(succ == m)
        found = np.searchsorted(cand, target[rest])
        np.minimum(found, m - 1, out=found)
        ok = cand[found] == target[rest]
        succ[rest[ok]] = found[ok]
        jump = np.append(succ, m)                            # jump[m] = m
        path = np.zeros(1, dtype=np.int64)                   # the candidates reached
        while jump[0] != m:
            # path holds the first 2^k nodes of the chain, jump the 2^k-th successor
            nxt = jump[path]
            path = np.concatenate([path, nxt[nxt != m]])
            jump = jump[jump]
        rows = cand[path]
        ends = rows + 4 + lens[path]
        if ends[-1] > len(seg):       # only the chain's last packet can be incomplete
            rows, ends = rows[:-1], ends[:-1]
        stop = np.flatnonzero(seg[rows + 4] >= 0xFE)
        if len(stop):                 # an EOF/ERR packet or a 0xFE row: stepped above
            rows, ends = rows[:stop[0]], ends[:stop[0]]
        # rows is not empty: the packet at pos is complete and no EOF/ERR (checked above)
        out.append(rows + (pos + 4))
        pos += int(ends[-1])


def _columns(buf: bytearray, starts: np.ndarray, ncols: int) -> list[pa.Array]:
    """Cut every column out of all rows at once (length-encoded values of the text protocol).

    The result buffer is read as one Arrow binary array whose elements alternate between the
    bytes in front of a value (packet and length headers) and the value itself: only offsets
    are computed (a few numpy passes over rows x columns), no byte is touched.  Each column is
    then one Arrow ``take`` of its values, which copies them value by value in C++ (a numpy
    gather of every byte through an int64 index costs ~10x more)."""
    b = np.frombuffer(buf, dtype=np.uint8)
    pos = np.asarray(starts, dtype=np.int64)
    n = len(pos)
    bounds = np.empty((n, ncols, 2), dtype=np.int64)
    nulls: list[np.ndarray | None] = []
    for c in range(ncols):
        lead = b[pos].astype(np.int64)
        if (lead < 0xFB).all():
            bounds[:, c, 0] = pos + 1
            pos = pos + 1 + lead
            nulls.append(None)
        else:
            length = lead.copy()
            hdr = np.ones(n, dtype=np.int64)
            null = lead == 0xFB
            length[null] = 0
            for code, width in ((0xFC, 2), (0xFD, 3), (0xFE, 8)):
                m = lead == code
                if m.any():
                    p = pos[m]
                    v = np.zeros(len(p), dtype=np.int64)
                    for k in range(width):
                        v |= b[p + 1 + k].astype(np.int64) << (8 * k)
                    length[m] = v
                    hdr[m] = 1 + width
            bounds[:, c, 0] = pos + hdr
            pos = pos + hdr + length
            nulls.append(null if null.any() else None)
        bounds[:, c, 1] = pos
    big32 = len(b) < (1 << 31) - 1
    offsets = np.empty(2 * n * ncols + 1, dtype=np.int32 if big32 else np.int64)
    offsets[0] = 0
    offsets[1:] = bounds.reshape(-1)
    whole = pa.Array.from_buffers(pa.binary() if big32 else pa.large_binary(), 2 * n * ncols,
                                  [None, pa.py_buffer(offsets), pa.py_buffer(buf)])
    out = []
    for c, null in enumerate(nulls):
        col = whole.take(pa.array(np.arange(2 * c + 1, 2 * n * ncols, 2 * ncols, dtype=np.int64)))
        if not big32:
            col = col.cast(pa.binary())
        if null is not None:
            validity = pa.py_buffer(np.packbits(~null, bitorder="little"))
            col = pa.Array.from_buffers(pa.binary(), n, [validity, *col.buffers()[1:]],
                                        null_count=int(null.sum()))
        out.append(col)
    return out


class RawChunk:
    """A chunk's result rows as read off the wire, not decoded yet: the fetch thread reads the
    next chunk while the reader's thread decodes this one (:meth:`to_arrow`), so the server's
    work on a query overlaps with ours on the previous result."""

    __slots__ = ("table", "buf", "starts", "ncols")

    def __init__(self, table: MySqlTable, buf: bytearray, starts: np.ndarray, ncols: int):
        self.table, self.buf, self.starts, self.ncols = table, buf, starts, ncols

    def __len__(self) -> int:
        return len(self.starts)

    def to_arrow(self, zero_null: bool) -> pa.RecordBatch:
        """The rows as a record batch of the table's Arrow schema (columns cut out and cast
        vectorised, :func:`_columns` and :func:`~sources.mysql.types.text_column_to_arrow`)."""
        table = self.table
        raw = _columns(self.buf, self.starts, self.ncols)
        arrays = [text_column_to_arrow(nat, col.type, arr, zero_null, table.table_id)
                  for nat, col, arr in zip(table.natives, table.schema.columns, raw)]
        return pa.RecordBatch.from_arrays(arrays, schema=table.schema.arrow_schema)


def read_chunk(conn: Any, table: MySqlTable, start: tuple | None, end: tuple | None,
               limit: int | None) -> RawChunk:
    """Run the chunk's SELECT and read its whole result, undecoded."""
    try:
        buf, starts, ncols = _raw_rows(conn, chunk_sql(conn, table, start, end, limit))
    except pymysql.err.MySQLError as exc:
        _raise_known(exc, table)
        raise
    if ncols != len(table.natives):
        raise TerminalError(f"{table.table_id}: the snapshot returned {ncols} columns, the schema "
                            f"has {len(table.natives)}")
    return RawChunk(table, buf, starts, ncols)


def select_chunk(conn: Any, table: MySqlTable, start: tuple | None, end: tuple | None,
                 limit: int | None, zero_null: bool) -> pa.RecordBatch:
    """The chunk's rows, decoded (:func:`read_chunk` then :meth:`RawChunk.to_arrow`)."""
    return read_chunk(conn, table, start, end, limit).to_arrow(zero_null)


def backfill(settings: dict[str, Any], dialect: Dialect, server_id: int, table: MySqlTable,
             low: BinlogOffset, high: BinlogOffset, start: tuple | None, end: tuple | None,
             zero_null: bool) -> dict[tuple, tuple | None]:
    """The changes to the chunk's key range between LOW and HIGH: key -> row after them (None
    when deleted), replayed from a short binlog read."""
    client = BinlogClient(settings, dialect, server_id, 0, 60.0)
    decoder = RowsDecoder(zero_null, dialect.name == "mariadb")
    final: dict[tuple, tuple | None] = {}
    file = low.file
    key_of = table.schema.key_of
    chunk_key = [table.schema.index(k) for k in table.chunk_key]

    def in_range(row: tuple) -> bool:
        k = comparable(tuple(row[i] for i in chunk_key))
        return (start is None or k >= start) and (end is None or k < end)

    try:
        client.open(BinlogOffset(low.file, low.pos))
        for ev in client.events():
            if ev.type == ROTATE:
                file = ev.body[8:].decode()
                continue
            if ev.log_pos and BinlogOffset(file, ev.log_pos - ev.size).key >= high.key:
                break
            if ev.type == TABLE_MAP:
                decoder.table_map(ev.body, lambda tm: table if make_table_id(tm.db, tm.table) == table.table_id else None)
            elif ev.type in ROW_EVENTS:
                got = decoder.rows(ev.type, ev.body)
                if got is None:
                    continue
                _, op, rows, full = got
                for r in rows:
                    if op == "u":
                        before, after = r
                        after = after if full else complete(table, after, before)
                        if in_range(before):
                            final[key_of(before)] = None
                        if in_range(after):
                            final[key_of(after)] = after
                    else:
                        row = r if full else complete(table, r, None)
                        if in_range(row):
                            final[key_of(row)] = None if op == "d" else row
    finally:
        client.close()
    return final


def merge(batch: pa.RecordBatch, table: MySqlTable, changes: dict[tuple, tuple | None]) -> list[tuple]:
    """Chunk rows with the backfilled changes applied (the slow path, for chunks that changed
    while they were read)."""
    cols = [c.to_pylist() for c in batch.columns]
    rows = {table.schema.key_of(r): r for r in zip(*cols)}
    for k, row in changes.items():
        if row is None:
            rows.pop(k, None)
        else:
            rows[k] = row
    return list(rows.values())


def now_ms() -> int:
    return int(time.time() * 1000)
