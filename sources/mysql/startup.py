"""Where ``startup-mode = "timestamp"`` starts: the transaction boundary before the first
transaction committed at or after the timestamp, as Flink CDC does.

The binlog file is found by a binary search over ``SHOW BINARY LOGS`` on the timestamp of each
file's first event (its format description, written when the file was started): the last file
started before the timestamp's second; that file (and the next ones) is then read up to the first transaction whose commit event is at or after the timestamp.  Binlog
timestamps are whole seconds: every transaction of the timestamp's second counts as at or
after it (starting early by less than a second rather than losing changes).  The search reads
a handful of file heads and at most one file; it runs once, at the first start: the offset it
finds is checkpointed like any other.
"""
from __future__ import annotations

import logging
from typing import Any

from runtime.errors import TerminalError
from sources.mysql.dialect import Dialect
from sources.mysql.offset import BinlogOffset, file_number
from sources.mysql.protocol import (FORMAT_DESCRIPTION, HEARTBEAT, HEARTBEAT_V2, QUERY, ROTATE,
                                    XID, BinlogClient, query_of, rotate_target)

log = logging.getLogger("hub.sources.mysql")
_END_STATEMENTS = ("COMMIT", "ROLLBACK", "XA COMMIT", "XA END")


def offset_at_timestamp(settings: dict[str, Any], dialect: Dialect, conn: Any, ts_ms: int,
                        server_id: int) -> BinlogOffset:
    """The offset to stream from so that the first change read is the first one committed at
    or after ``ts_ms`` (epoch milliseconds); the binlog's end when there is none yet."""
    target = ts_ms // 1000
    with conn.cursor() as cur:
        cur.execute("SHOW BINARY LOGS")
        files = [row[0] for row in cur.fetchall()]
    end = dialect.binlog_status(conn)
    if not files:
        raise TerminalError("the server keeps no binary log: start it with log-bin")
    lo, hi, found = 0, len(files) - 1, 0
    # the last file started before the target's second (one started within it may follow a
    # file that holds changes of that second too)
    while lo <= hi:
        mid = (lo + hi) // 2
        if _first_timestamp(settings, dialect, files[mid], server_id) < target:
            found, lo = mid, mid + 1
        else:
            hi = mid - 1
    start = _scan(settings, dialect, BinlogOffset(files[found], 4), end, target, server_id)
    offset = BinlogOffset(start.file, start.pos, dialect.gtid_at(conn, start))
    log.info("mysql: startup-timestamp-millis %d: the binlog is read from %s (the first "
             "transaction at or after it; %d binlog file(s), searched from %s)", ts_ms, offset,
             len(files), files[found])
    return offset


def _client(settings: dict[str, Any], dialect: Dialect, server_id: int) -> BinlogClient:
    return BinlogClient(settings, dialect, server_id, 1.0, 30.0)


def _first_timestamp(settings: dict[str, Any], dialect: Dialect, file: str, server_id: int) -> int:
    """When ``file`` was started: the timestamp of its format description event."""
    client = _client(settings, dialect, server_id)
    try:
        client.open(BinlogOffset(file, 4))
        for ev in client.events():
            if ev.type == FORMAT_DESCRIPTION or (ev.timestamp and ev.log_pos):
                return ev.timestamp
    finally:
        client.close()
    raise AssertionError("unreachable: events() raises when the stream ends")


def _scan(settings: dict[str, Any], dialect: Dialect, start: BinlogOffset, end: BinlogOffset,
          target: int, server_id: int) -> BinlogOffset:
    """The boundary before the first transaction from ``start`` on whose commit event is at
    or after ``target`` (seconds); ``end`` when none is before it."""
    client = _client(settings, dialect, server_id)
    file, boundary, in_tx = start.file, start, False
    try:
        client.open(start)
        for ev in client.events():
            et = ev.type
            if et in (HEARTBEAT, HEARTBEAT_V2):
                return end        # caught up with the server: nothing at or after the target
            if et == ROTATE:
                new_file, pos = rotate_target(ev.body)
                if new_file != file:
                    file, boundary = new_file, BinlogOffset(new_file, pos)
                continue
            if not ev.log_pos:
                continue
            done = False
            if et == XID:
                done = True
            elif et == QUERY:
                head = query_of(ev.body)[1].lstrip()[:10].upper()
                if head.startswith("BEGIN"):
                    in_tx = True
                elif head.startswith(_END_STATEMENTS) or not in_tx:
                    done = True
            elif et == dialect.gtid_event_type:
                in_tx = dialect.name == "mariadb" and not (ev.body[12] & 0x01)
            if done:
                if ev.timestamp >= target:
                    return boundary
                in_tx = False
                boundary = BinlogOffset(file, ev.log_pos)
            if (file_number(file), ev.log_pos) >= end.key:
                return end
    finally:
        client.close()
    raise AssertionError("unreachable: events() raises when the stream ends")
