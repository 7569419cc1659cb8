"""A binlog client on the MySQL protocol (a PyMySQL connection does the handshake): requests
a dump from an offset and yields raw events.  No decoding here beyond the event header, so the
caller decides per event what is worth decoding.  Reconnecting is the caller's business: this
client never resumes on its own (the position that counts is the one the hub tracked)."""
from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from runtime.errors import TerminalError, TransientError
from sources.mysql.dialect import Dialect
from sources.mysql.offset import BinlogOffset

# event types
QUERY, ROTATE, FORMAT_DESCRIPTION, XID, TABLE_MAP = 2, 4, 15, 16, 19
WRITE_V1, UPDATE_V1, DELETE_V1 = 23, 24, 25
HEARTBEAT, WRITE_V2, UPDATE_V2, DELETE_V2 = 27, 30, 31, 32
PARTIAL_UPDATE_ROWS, TRANSACTION_PAYLOAD, HEARTBEAT_V2, GTID_TAGGED = 39, 40, 41, 42
MARIADB_GTID, MARIADB_GTID_LIST = 162, 163
ROW_EVENTS = {WRITE_V1: "c", UPDATE_V1: "u", DELETE_V1: "d", WRITE_V2: "c", UPDATE_V2: "u",
              DELETE_V2: "d"}
_HEADER = struct.Struct("<IBIIIH")

#: MySQL errors meaning the requested binlog or GTID is gone from the server.
PURGED_ERRORS = (1236,)


class BinlogPurgedError(TerminalError):
    """The position to resume from is no longer on the server."""


@dataclass(slots=True)
class RawEvent:
    timestamp: int
    type: int
    server_id: int
    size: int
    log_pos: int   # position after this event in its file (0 for artificial events)
    flags: int
    body: bytes    # after the 19-byte header, checksum removed


def connect(settings: dict[str, Any]) -> Any:
    import pymysql

    try:
        return pymysql.connect(autocommit=True, **settings)
    except pymysql.err.OperationalError as exc:
        raise TransientError(f"can't connect to MySQL at {settings.get('host')}:"
                             f"{settings.get('port')}: {exc.args[-1]}") from None


class BinlogClient:
    """One binlog dump connection.  ``events()`` yields until the connection ends."""

    def __init__(self, settings: dict[str, Any], dialect: Dialect, server_id: int,
                 heartbeat_s: float, read_timeout_s: float):
        self.settings = {**settings, "read_timeout": read_timeout_s}
        self.dialect = dialect
        self.server_id = server_id
        self.heartbeat_s = heartbeat_s
        self.conn: Any = None
        self.checksum = False

    def open(self, offset: BinlogOffset) -> None:
        self.conn = connect(self.settings)
        with self.conn.cursor() as cur:
            cur.execute("SELECT @@global.binlog_checksum")
            self.checksum = (cur.fetchone()[0] or "NONE").upper() != "NONE"
            self.dialect.prepare_session(cur)
            if self.heartbeat_s > 0:
                period = int(self.heartbeat_s * 1e9)
                cur.execute("SET @master_heartbeat_period = %s, @source_heartbeat_period = %s",
                            (period, period))
        self._register()
        cmd = self.dialect.dump_command(self.conn, offset, self.server_id)
        self.conn._next_seq_id = 0
        self.conn._write_bytes(struct.pack("<I", len(cmd))[:3] + b"\x00" + cmd)
        self.conn._next_seq_id = 1

    def _register(self) -> None:
        # COM_REGISTER_SLAVE: makes the dump visible in SHOW SLAVE HOSTS with our server id
        host = b""
        body = (bytes([0x15]) + struct.pack("<I", self.server_id) + bytes([len(host)]) + host
                + b"\x00\x00" + struct.pack("<HII", 0, 0, 0))
        self.conn._next_seq_id = 0
        self.conn._write_bytes(struct.pack("<I", len(body))[:3] + b"\x00" + body)
        self.conn._next_seq_id = 1
        self.conn._read_packet()

    def events(self) -> Iterator[RawEvent]:
        import pymysql

        read = self.conn._read_packet
        unpack = _HEADER.unpack_from
        trim = 4 if self.checksum else 0
        while True:
            try:
                packet = read()
            except pymysql.err.OperationalError as exc:
                code = exc.args[0]
                if code in PURGED_ERRORS:
                    raise BinlogPurgedError(
                        f"the binlog position to read from is gone from the server ({exc.args[-1]}): "
                        "the binlog was purged before the hub read it. Remedy: keep binlogs longer "
                        "(binlog_expire_logs_seconds / expire_logs_days) and restart the pipeline "
                        "with --fresh to take a new snapshot") from None
                raise TransientError(f"binlog connection lost: {exc.args[-1]}") from None
            except (pymysql.err.InterfaceError, OSError) as exc:
                raise TransientError(f"binlog connection lost: {exc}") from None
            data = packet.get_all_data()
            if data[:1] == b"\xfe" and len(data) < 9:
                return  # EOF: non-blocking dump reached the end
            ts, etype, sid, size, log_pos, flags = unpack(data, 1)
            body = data[20:len(data) - trim] if trim and etype != FORMAT_DESCRIPTION else data[20:]
            if etype == FORMAT_DESCRIPTION and trim:
                body = body[:-4]
            yield RawEvent(ts, etype, sid, size, log_pos, flags, body)

    def close(self) -> None:
        if self.conn is not None:
            try:
                self.conn.close()
            except Exception:  # noqa: BLE001 - the socket may already be gone
                pass
            self.conn = None


def rotate_target(body: bytes) -> tuple[str, int]:
    pos = struct.unpack_from("<Q", body, 0)[0]
    return body[8:].decode(), pos


def query_of(body: bytes) -> tuple[str, str]:
    """(default database, statement) of a QUERY event."""
    db_len = body[8]
    status_len = struct.unpack_from("<H", body, 11)[0]
    start = 13 + status_len
    db = body[start:start + db_len].decode(errors="replace")
    return db, body[start + db_len + 1:].decode(errors="replace")
